"""Password reset by mail: ask for a link, receive it, choose a new password with it.

- :func:`request_password_reset` (``POST /api/v1/auth/password-reset``) only queues a job: the
  answer and the work done in the request are the same whether or not the address has an
  account, so neither the response nor its timing tells.
- The worker's job runs :func:`issue_password_reset`: for an active account it stores the hash
  of a new one-use token in Redis for :data:`RESET_TTL_SECONDS` and mails the link.
- :func:`reset_password` takes the token once (``GETDEL``). Every link carries the account's
  ``link_generation`` from when it was made; setting a password from any mailed link bumps that
  generation, so every other outstanding link of the account stops working, and it ends the
  account's console sessions.
"""

from __future__ import annotations

from urllib.parse import urlencode

from redis.asyncio import Redis
from saq.queue.base import Queue

from server.accounts import passwords
from server.accounts.links import PASSWORD_RESET_PREFIX, link_token_hash, new_link_token
from server.accounts.services import check_email, check_new_password
from server.accounts.sessions import destroy_user_sessions
from server.accounts.tables import User
from server.database import engine
from server.errors import ErrorCode, NotFound
from server.mail.messages import Mail, render_mail
from server.redis_client import Keys

RESET_TTL_SECONDS = 3600
SEND_PASSWORD_RESET_JOB = "send_password_reset"  # noqa: S105  (a job name)
LINK_INVALID = "This link is unknown, used or expired."


async def request_password_reset(queue: Queue, email: str) -> None:
    """Queue the reset mail for ``email``; does the same work whether the account exists or not."""
    normalized = check_email(email)
    await queue.enqueue(SEND_PASSWORD_RESET_JOB, email=normalized, retries=3, timeout=60)


async def issue_password_reset(redis: Redis, email: str) -> tuple[User, str] | None:
    """For the worker: a new reset token for the active account of ``email``, or None."""
    user: User | None = (
        await User.objects().where((User.email == email) & (User.active == True)).first()  # noqa: E712
    )
    if user is None:
        return None
    token = new_link_token(PASSWORD_RESET_PREFIX)
    value = f"{user.id}:{user.link_generation}"
    await redis.set(Keys.password_reset(link_token_hash(token)), value, ex=RESET_TTL_SECONDS)
    return user, token


async def bump_link_generation(user_id: int) -> None:
    """Invalidate every outstanding mailed link of the account (callers hold a transaction or not)."""
    await User.update({User.link_generation: User.link_generation + 1}).where(User.id == user_id)


async def reset_password(redis: Redis, token: str, password: str) -> User:
    """Set the password with a reset token (once); every other link of the account stops working."""
    check_new_password(password)
    raw = await redis.getdel(Keys.password_reset(link_token_hash(token)))
    if raw is None:
        raise NotFound(LINK_INVALID, code=ErrorCode.LINK_INVALID)
    user_id, _, generation = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
    async with engine().transaction():
        user: User | None = (
            await User.objects()
            .where((User.id == int(user_id)) & (User.active == True))  # noqa: E712
            .lock_rows("UPDATE")
            .first()
        )
        if user is None or str(user.link_generation) != generation:
            raise NotFound(LINK_INVALID, code=ErrorCode.LINK_INVALID)
        account_id: int = user.id
        await User.update(
            {User.password: passwords.hash_password(password), User.link_generation: User.link_generation + 1}
        ).where(User.id == account_id)
    await destroy_user_sessions(redis, account_id)
    refreshed: User | None = await User.objects().where(User.id == account_id).first()
    assert refreshed is not None
    return refreshed


def password_reset_mail(user: User, token: str, public_url: str) -> Mail:
    """The mail carrying a reset link (for the worker)."""
    context = {
        "name": user.name or user.email,
        "link": f"{public_url}/console/set-password?{urlencode({'token': token})}",
        "minutes": RESET_TTL_SECONDS // 60,
    }
    return render_mail("password_reset", user.email, context)
