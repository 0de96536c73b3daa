"""The Install page: snippet, identity secret, rotations behind typed confirmation, working samples."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from console.identity_samples import SAMPLES
from server.chat.identity import IdentityClaim, verify_identity
from server.tenancy.tables import Project, ProjectMember
from tests import factories as f
from tests.console.helpers import HTMX, field_error, post, sign_in

Role = ProjectMember.ProjectRole


async def _project_and_manager(client: httpx.AsyncClient) -> tuple[Project, str]:
    project = await f.make_project(name="Shop")
    manager = await f.make_user(email="boss@example.com")
    await f.make_member(project, manager, Role.MANAGER)
    return project, await sign_in(client, "boss@example.com")


async def _fresh(project: Project) -> Project:
    row = await Project.objects().where(Project.id == project.id).first()
    assert row is not None
    return row


async def test_the_snippet_names_the_widget_key_and_the_secret_shows_on_request(
    client: httpx.AsyncClient,
) -> None:
    project, _ = await _project_and_manager(client)
    page = await client.get(f"/console/projects/{project.id}/install")
    assert f'data-project="{project.public_key}"' in page.text.replace("&#34;", '"')
    assert "/widget.js" in page.text
    assert project.identity_secret not in page.text
    shown = await client.get(f"/console/projects/{project.id}/install?show=secret", headers=HTMX)
    assert shown.text.lstrip().startswith('<div id="identity-secret"')  # the block alone
    assert project.identity_secret in shown.text
    assert f'href="/console/projects/{project.id}/install">Hide' in shown.text  # the block's own path


async def test_rotating_needs_the_typed_name(client: httpx.AsyncClient) -> None:
    project, csrf = await _project_and_manager(client)
    base = f"/console/projects/{project.id}/install"
    refused = await post(client, base + "/rotate-identity-secret", csrf, {"confirm": "shop"})
    assert refused.status_code == 422
    assert field_error(refused.text, "confirm-secret") == "Type the project's name exactly to confirm."
    assert (await _fresh(project)).identity_secret == project.identity_secret
    rotated = await post(client, base + "/rotate-identity-secret", csrf, {"confirm": "Shop"})
    assert rotated.status_code == 303
    assert (await _fresh(project)).identity_secret != project.identity_secret
    key = await post(client, base + "/rotate-widget-key", csrf, {"confirm": "Shop"})
    assert key.status_code == 303
    assert (await _fresh(project)).public_key != project.public_key


async def test_the_enforce_toggle_uses_the_project_setting(client: httpx.AsyncClient) -> None:
    project, csrf = await _project_and_manager(client)
    base = f"/console/projects/{project.id}/install"
    await post(client, base + "/enforce-identity", csrf, {"enforce_identity": "on"})
    assert (await _fresh(project)).enforce_identity is True
    await post(client, base + "/enforce-identity", csrf, {})
    assert (await _fresh(project)).enforce_identity is False


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.language == "Python"], ids=lambda s: s.method)
def test_the_python_samples_sign_what_the_widget_api_verifies(sample: Any, monkeypatch: Any) -> None:
    secret = "s3cret-for-the-sample"
    monkeypatch.setenv("PARLEY_IDENTITY_SECRET", secret)
    user = SimpleNamespace(id=42, name="Ann", email="ann@example.com")
    scope: dict[str, Any] = {"user": user, "os": os, "time": time}
    exec(sample.code, scope)  # noqa: S102 (our own sample, run to prove it works)
    if sample.method == "hmac":
        claim = IdentityClaim(user_id="42", signature=scope["signature"])
    else:
        claim = IdentityClaim(jwt=scope["token"])
    identity = verify_identity(claim, secret, enforce=True)
    assert identity.external_id == "42"
