"""Rate limits on account operations (per IP and per e-mail, so neither a botnet nor one IP wins)."""

from server.ratelimit import Limit

LOGIN_PER_IP = Limit(scope="login-ip", limit=30, window_seconds=300)
LOGIN_PER_EMAIL = Limit(scope="login-email", limit=10, window_seconds=300)
INVITE_PER_IP = Limit(scope="invite-ip", limit=20, window_seconds=300)
