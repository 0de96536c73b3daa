"""Screenshot DTOs (msgspec): the request, the handle's view, what Redis keeps of a handle."""

from __future__ import annotations

from typing import Literal

import msgspec

Viewport = Literal["desktop", "mobile"]
State = Literal["queued", "rendering", "ready", "failed"]
Mode = Literal["url", "snapshot"]


class ScreenshotCreate(msgspec.Struct, forbid_unknown_fields=True):
    viewport: Viewport = "desktop"
    """``desktop`` (1280x800) or ``mobile`` (390x844, touch, a phone's user agent)."""
    mode: Mode | None = None
    """``url``: the page's address loaded in a fresh, signed-out browser. ``snapshot``: the
    visitor's widget sends a sanitised copy of the page as the visitor sees it (only where the
    project turned ``dom_snapshots`` on, else 409 ``snapshots_disabled``). Left out: ``snapshot``
    when the project turned it on, else ``url``."""


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
    mode: Mode
    """How it is drawn: from the URL, or from the widget's snapshot of the page."""
    code: str | None = None
    """Failed only, why (machine-readable): ``address_not_allowed``, ``render_timeout``,
    ``page_unreachable``, ``page_too_large``, ``image_too_large``, ``render_lost``, ``render_error``;
    snapshots also ``snapshot_not_received``, ``snapshot_too_large``, ``snapshot_failed``."""
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
    mode: Mode = "url"


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
    snapshot: bool = False
    """Draw the widget's DOM snapshot (``Keys.screenshot_snapshot``) with ``url`` as its address,
    JavaScript off, instead of loading ``url``."""


class SnapshotRequest(msgspec.Struct, frozen=True):
    """What web keeps while it waits for a visitor's widget to send its copy of the page."""

    visitor_uid: str
    job: RenderJob
    """The render to queue once the copy is there (or to fail if the widget cannot send it)."""


class SnapshotUpload(msgspec.Struct, forbid_unknown_fields=True):
    """The widget's answer to ``screenshot.requested``: the sanitised page, or why there is none."""

    html: str | None = None
    """The serialised document: scripts, event handlers and frames removed, every input's value
    and every password field masked (the widget's sanitiser, ``static/widget/snapshot.js``)."""
    error: Literal["snapshot_too_large", "snapshot_failed"] | None = None


class SnapshotAck(msgspec.Struct):
    accepted: bool
