"""Administration > Mailbox: the development mailbox (mail kept in Redis when no SMTP_URL is set)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.mail.delivery import dev_mailbox
from server.web_state import redis_of, settings_of


@get("/admin/mailbox", name="console:admin-mailbox", opt=needs(Need.ADMIN))
async def mailbox_page(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    mails = await dev_mailbox(redis_of(request.app), limit=50)
    settings = getattr(settings_of(request.app), "mail", None)
    smtp = bool(getattr(settings, "smtp_url", None))
    return render(
        request, "console/admin_mailbox.html", {"section": "admin-mailbox", "mails": mails, "smtp": smtp}
    )


route_handlers = [mailbox_page]
