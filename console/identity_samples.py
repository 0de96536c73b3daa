"""Server-side code that signs a visitor's identity, shown on the Install page.

Kept as data so a test can run the Python ones against :func:`server.chat.identity.verify_identity`:
a sample that drifts from what the widget API accepts fails there, not at a customer's.
Each sample reads the secret from ``PARLEY_IDENTITY_SECRET``; none embeds it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    language: str
    method: str
    """``hmac`` or ``jwt``."""
    code: str


SAMPLES = (
    Sample(
        "Python",
        "hmac",
        """import hashlib, hmac, os

secret = os.environ["PARLEY_IDENTITY_SECRET"]
user_id = str(user.id)
signature = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
# Pass to the page: Parley.identify({user_id, signature, name, email})""",
    ),
    Sample(
        "Python",
        "jwt",
        """import os, time
import jwt  # pip install pyjwt

token = jwt.encode(
    {"sub": str(user.id), "name": user.name, "email": user.email, "exp": int(time.time()) + 3600},
    os.environ["PARLEY_IDENTITY_SECRET"],
    algorithm="HS256",
)
# Pass to the page: Parley.identify({jwt: token})""",
    ),
    Sample(
        "Node",
        "hmac",
        """const crypto = require("node:crypto");

const userId = String(user.id);
const signature = crypto
  .createHmac("sha256", process.env.PARLEY_IDENTITY_SECRET)
  .update(userId)
  .digest("hex");
// Pass to the page: Parley.identify({ user_id: userId, signature, name, email })""",
    ),
    Sample(
        "Node",
        "jwt",
        """const jwt = require("jsonwebtoken"); // npm install jsonwebtoken

const token = jwt.sign(
  { sub: String(user.id), name: user.name, email: user.email },
  process.env.PARLEY_IDENTITY_SECRET,
  { algorithm: "HS256", expiresIn: "1h" },
);
// Pass to the page: Parley.identify({ jwt: token })""",
    ),
    Sample(
        "PHP",
        "hmac",
        """<?php
$userId = (string) $user->id;
$signature = hash_hmac('sha256', $userId, getenv('PARLEY_IDENTITY_SECRET'));
// Pass to the page: Parley.identify({user_id, signature, name, email})""",
    ),
    Sample(
        "PHP",
        "jwt",
        """<?php
use Firebase\\JWT\\JWT; // composer require firebase/php-jwt

$token = JWT::encode(
    ['sub' => (string) $user->id, 'name' => $user->name, 'email' => $user->email, 'exp' => time() + 3600],
    getenv('PARLEY_IDENTITY_SECRET'),
    'HS256'
);
// Pass to the page: Parley.identify({jwt: token})""",
    ),
)
