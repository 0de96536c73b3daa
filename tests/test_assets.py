"""Pinned browser assets: integrity checked, served, never committed."""

from __future__ import annotations

import base64
import hashlib
import subprocess

import httpx
import pytest

from server.assets import ASSETS, ROOT, AssetError, verify_integrity


def test_integrity_mismatch_is_refused() -> None:
    good = b"console.log('htmx')"
    digest = "sha512-" + base64.b64encode(hashlib.sha512(good).digest()).decode()
    verify_integrity(good, digest)
    with pytest.raises(AssetError, match="integrity mismatch"):
        verify_integrity(good + b" tampered", digest)


def test_htmx_is_pinned_to_2_0() -> None:
    htmx = next(asset for asset in ASSETS if asset.package == "htmx.org")
    assert htmx.version.startswith("2.0.")


def test_vendor_folder_is_not_committed() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "static/vendor/htmx.min.js"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0


async def test_htmx_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200
    assert "htmx" in response.text[:2000]
