"""Third-party browser assets, fetched at install time and checked against pinned hashes.

Nothing third-party is committed: ``make`` runs ``python -m server fetch-assets``, which
downloads each pinned npm tarball, verifies its ``sha512`` integrity (the value npm publishes
as ``dist.integrity``), and extracts the one file we serve into ``static/vendor/`` (git-ignored).
No Node is needed to run it; only the registry's address is taken from npm's own setting:
``NPM_CONFIG_REGISTRY`` when set, otherwise ``npm config get registry`` when npm is installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "static" / "vendor"


class AssetError(Exception):
    """An asset could not be fetched or failed its integrity check."""


@dataclass(frozen=True, slots=True)
class NpmAsset:
    package: str
    version: str
    integrity: str
    """``sha512-<base64>`` exactly as the registry publishes it."""
    member: str
    """Path of the file inside the tarball."""
    target: str
    """File name under ``static/vendor``."""


# htmx 2.0.x is pinned on purpose: the registry's "latest" tag has moved to 4.x.
ASSETS = (
    NpmAsset(
        package="htmx.org",
        version="2.0.11",
        integrity="sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        member="package/dist/htmx.min.js",
        target="htmx.min.js",
    ),
)


def npm_registry() -> str:
    configured = os.environ.get("NPM_CONFIG_REGISTRY", "").strip()
    if configured:
        return configured.rstrip("/")
    npm = shutil.which("npm")
    if npm is not None:
        result = subprocess.run(
            [npm, "config", "get", "registry"], capture_output=True, text=True, check=False
        )
        value = result.stdout.strip()
        if result.returncode == 0 and value.startswith(("http://", "https://")):
            return value.rstrip("/")
    raise AssetError("cannot tell the npm registry's address: set NPM_CONFIG_REGISTRY (npm is not installed)")


def verify_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise AssetError(f"unsupported integrity algorithm {algorithm!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise AssetError(f"integrity mismatch: expected {integrity}, got sha512-{actual}")


def _stamp(asset: NpmAsset) -> Path:
    return VENDOR_DIR / f".{asset.target}.integrity"


def fetch_asset(asset: NpmAsset, registry: str) -> bool:
    """Download, verify and extract one asset; False when it is already in place."""
    if _up_to_date(asset):
        return False
    name = asset.package.rsplit("/", 1)[-1]
    url = f"{registry}/{asset.package}/-/{name}-{asset.version}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (https registry URL)
            data = response.read()
    except OSError as error:
        raise AssetError(f"cannot download {asset.package}@{asset.version}: {error}") from None
    verify_integrity(data, asset.integrity)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(asset.member)
        if member is None:
            raise AssetError(f"{asset.member} is not in {asset.package}@{asset.version}")
        content = member.read()
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    (VENDOR_DIR / asset.target).write_bytes(content)
    _stamp(asset).write_text(asset.integrity)
    return True


def fetch_assets() -> str:
    missing = [asset for asset in ASSETS if not _up_to_date(asset)]
    if not missing:
        return "browser assets up to date"
    registry = npm_registry()
    fetched = [f"{asset.package}@{asset.version}" for asset in missing if fetch_asset(asset, registry)]
    return "fetched " + ", ".join(fetched)


def _up_to_date(asset: NpmAsset) -> bool:
    stamp = _stamp(asset)
    return (VENDOR_DIR / asset.target).exists() and stamp.exists() and stamp.read_text() == asset.integrity
