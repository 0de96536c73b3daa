"""Screenshot DTOs (msgspec): the request, the handle's view, what Redis keeps of a handle."""

from __future__ import annotations

from typing import Literal

import msgspec

Viewport = Literal["desktop", "mobile"]
State = Literal["queued", "rendering", "ready", "failed"]


class ScreenshotCreate(msgspec.Struct, forbid_unknown_fields=True):
    viewport: Viewport = "desktop"
    """``desktop`` (1280x800) or ``mobile`` (390x844, touch, a phone's user agent)."""


class ScreenshotError(msgspec.Struct):
    code: str
    message: str


class ScreenshotView(msgspec.Struct, omit_defaults=True):
    """A handle: what was asked, and where the render stands."""

    id: str
    state: State
    visitor_id: int
    url: str
    """The normalised URL rendered (the visitor's page when asked)."""
    viewport: Viewport
    href: str
    """``GET`` it: the image once ready, else this view."""
    requested_at: float
    """Unix time."""
    code: str | None = None
    """Failed only, why (machine-readable): ``address_not_allowed``, ``render_timeout``,
    ``page_unreachable``, ``page_too_large``, ``image_too_large``, ``render_lost``, ``render_error``."""
    message: str | None = None
    """Failed only: why, for people."""


class HandleInfo(msgspec.Struct, frozen=True):
    """What Redis keeps of a handle besides its state (``Keys.screenshot_handle``, field ``info``)."""

    id: str
    project_id: int
    visitor_id: int
    visitor_uid: str
    url: str
    viewport: Viewport
    digest: str
    requested_by: int
    """The asking agent's user id: ``screenshot.ready`` goes to that agent's sockets."""
    requested_at: float


class RenderJob(msgspec.Struct, frozen=True):
    """The arguments of one ``render_screenshot`` job."""

    project_id: int
    digest: str
    url: str
    viewport: Viewport
    render_id: str
    """The lock's owner: only this render may end it."""
    keep_seconds: int
    """How long the render's outcome is kept (as long as its handles)."""
