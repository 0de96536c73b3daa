"""Rate limits on account operations (per IP and per e-mail, so neither a botnet nor one IP wins)."""

from server.ratelimit import Limit

LOGIN_PER_IP = Limit(scope="login-ip", limit=30, window_seconds=300)
LOGIN_PER_EMAIL = Limit(scope="login-email", limit=10, window_seconds=300)

LINK_PER_IP = Limit(scope="link-ip", limit=20, window_seconds=300)
"""Using a mailed link's token (set a password, preview or accept an invitation)."""
RESET_PER_IP = Limit(scope="reset-ip", limit=10, window_seconds=3600)
RESET_PER_EMAIL = Limit(scope="reset-email", limit=3, window_seconds=3600)
