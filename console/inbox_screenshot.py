"""The inbox panel's screenshot: an agent asks for a picture of the visitor's page and sees it.

``POST …/inbox/{c}/screenshot`` calls the same service as ``POST /api/v1/…/visitors/{v}/screenshot``
and answers the panel's ``screenshot_slot`` block; while the render runs, the slot asks again
(``GET …/screenshot/{id}``) when the agent's socket says ``screenshot.ready`` or
``screenshot.failed`` (``inbox:screenshot``), and every few seconds as a fallback. The image itself
is the API's handle URL, which the console's session cookie may read.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from console.forms import form_data
from console.inbox import TEMPLATE
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.chat import queries
from server.errors import DomainError
from server.screenshots import services
from server.screenshots.schemas import ScreenshotView
from server.web_state import redis_of, screenshot_queue_of, settings_of

BASE = "/projects/{project_id:int}/inbox/{conversation_id:int}/screenshot"


def _slot(
    request: Request[Any, Any, Any],
    project_id: int,
    conversation_id: int,
    shot: ScreenshotView | None,
    error: str | None = None,
) -> Page:
    context = {
        "project_id": project_id,
        "conversation": {"id": conversation_id},
        "shot": shot,
        "shot_error": error,
    }
    return render(request, TEMPLATE, context, blocks=["screenshot_slot"])


@post(BASE, opt=needs(Need.AGENT))
async def ask_for_screenshot(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
) -> Page:
    redis = redis_of(request.app)
    viewport = (await form_data(request)).get("viewport", "desktop")
    try:
        conversation = await queries.get_conversation(redis, project_id, conversation_id)
        shot = await services.request_screenshot(
            redis,
            screenshot_queue_of(request.app),
            settings_of(request.app).screenshots,
            project_id=project_id,
            visitor_id=conversation.visitor.id,
            requested_by=viewer.actor.user_id,
            viewport="mobile" if viewport == "mobile" else "desktop",
        )
    except DomainError as error:
        return _slot(request, project_id, conversation_id, None, error.message)
    return _slot(request, project_id, conversation_id, shot)


@get(BASE + "/{screenshot_id:str}", opt=needs(Need.AGENT))
async def screenshot_state(
    request: Request[Any, Any, Any],
    viewer: CurrentViewer,
    project_id: FromPath[int],
    conversation_id: FromPath[int],
    screenshot_id: FromPath[str],
) -> Page:
    settings = settings_of(request.app).screenshots
    try:
        result = await services.read_screenshot(
            redis_of(request.app), project_id, screenshot_id, settings.cache_seconds
        )
    except DomainError as error:
        return _slot(request, project_id, conversation_id, None, error.message)
    if isinstance(result, services.Image):
        result = await services.describe_ready(redis_of(request.app), project_id, screenshot_id)
    return _slot(request, project_id, conversation_id, result)


route_handlers = [ask_for_screenshot, screenshot_state]
