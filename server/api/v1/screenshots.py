"""Screenshots of a visitor's page: ask for one (202 with a handle), then ``GET`` the handle."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from litestar import MediaType, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter

from server.api.access import CurrentActor, project_role
from server.api.params import ProjectId, VisitorId
from server.screenshots import services
from server.screenshots.schemas import ScreenshotCreate, ScreenshotView
from server.tenancy.access import ProjectRole
from server.web_state import redis_of, screenshot_queue_of, settings_of

ScreenshotId: TypeAlias = Annotated[
    str, PathParameter(min_length=3, max_length=40, pattern=r"^s_[A-Za-z0-9_-]+$")
]


@post(
    "/projects/{project_id:int}/visitors/{visitor_id:int}/screenshot",
    opt=project_role(ProjectRole.AGENT),
    status_code=202,
    summary="Ask for a screenshot of the visitor's current page; answers a handle to GET",
)
async def request_screenshot(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    project_id: ProjectId,
    visitor_id: VisitorId,
    data: JSONBody[ScreenshotCreate | None] = None,
) -> ScreenshotView:
    settings = settings_of(request.app)
    asked = data or ScreenshotCreate()
    return await services.request_screenshot(
        redis_of(request.app),
        screenshot_queue_of(request.app),
        settings.screenshots,
        project_id=project_id,
        visitor_id=visitor_id,
        requested_by=actor.user_id,
        viewport=asked.viewport,
        mode=asked.mode,
    )


@get(
    "/projects/{project_id:int}/screenshots/{screenshot_id:str}",
    opt=project_role(ProjectRole.AGENT),
    summary="The screenshot (image/jpeg) once ready; else its state (202 queued/rendering, 422 failed)",
    responses={
        200: ResponseSpec(data_container=bytes, media_type="image/jpeg", description="The image"),
        202: ResponseSpec(data_container=ScreenshotView, description="Queued or rendering: GET again"),
        422: ResponseSpec(data_container=ScreenshotView, description="Failed: code and message say why"),
    },
)
async def get_screenshot(
    request: Request[Any, Any, Any], project_id: ProjectId, screenshot_id: ScreenshotId
) -> Response[Any]:
    settings = settings_of(request.app).screenshots
    result = await services.read_screenshot(
        redis_of(request.app), project_id, screenshot_id, settings.cache_seconds
    )
    if isinstance(result, services.Image):
        return Response(
            result.data,
            media_type=result.content_type,
            headers={
                "Cache-Control": f"private, max-age={result.max_age}",
                "X-Content-Type-Options": "nosniff",
            },
        )
    return Response(result, status_code=422 if result.state == "failed" else 202, media_type=MediaType.JSON)


route_handlers = [request_screenshot, get_screenshot]
