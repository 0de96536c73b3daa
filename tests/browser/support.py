"""What browser tests share beyond fixtures: screenshots for reviewers and axe-core checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.processes import ROOT

SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
AXE_SOURCE = ROOT / "tests" / "browser" / "node" / "node_modules" / "axe-core" / "axe.min.js"


async def _color_scheme(page: Page) -> str:
    dark: bool = await page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    return "dark" if dark else "light"


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Write ``.artifacts/screenshots/<name>-<light|dark>.png`` (the page's colour scheme)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{await _color_scheme(page)}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


SERIOUS = ("serious", "critical")


async def axe_violations(page: Page, *, include: str | None = None) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations in the page (open shadow roots included).

    The script is evaluated through the DevTools protocol, so a page's strict CSP does not stop it
    (no ``<script>`` element is added, and the page's own CSP stays in force for everything else).
    """
    if not AXE_SOURCE.exists():
        pytest.fail(f"axe-core is missing ({AXE_SOURCE}): `make test-deps` installs it")
    loaded = await page.evaluate("() => typeof window.axe === 'object'")
    if not loaded:
        await page.evaluate(AXE_SOURCE.read_text() + "\n;undefined")
    context = json.dumps(include) if include else "document"
    results: list[dict[str, Any]] = await page.evaluate(
        f"""async () => {{
            const result = await axe.run({context}, {{resultTypes: ['violations']}});
            return result.violations.map(v => ({{
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5),
            }}));
        }}"""
    )
    return [violation for violation in results if violation["impact"] in SERIOUS]


async def assert_accessible(page: Page, *, include: str | None = None) -> None:
    """Fail with a readable list when axe-core finds a serious or critical violation."""
    violations = await axe_violations(page, include=include)
    assert not violations, (
        "axe-core violations on "
        + page.url
        + ":\n"
        + "\n".join(f"- {v['impact']} {v['id']}: {v['help']} at {v['targets']}" for v in violations)
    )
