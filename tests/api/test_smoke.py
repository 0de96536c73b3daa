from __future__ import annotations

import httpx


async def test_openapi_schema_lists_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    assert "/api/v1/projects/{project_id}/conversations" in paths
    assert "/api/widget/v1/session" in paths
    docs = await client.get("/schema")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
