"""The docs work offline: Swagger UI and ReDoc load in a real headless Chromium that can
reach nothing but 127.0.0.1, and their pages allow no other origin."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hookpost.app import create_app
from hookpost.settings import Settings
from tests.integration.live import serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run): there, a missing browser is a failure, not a skip.
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Chromium is not installed"
)


@pytest.fixture
def live_docs(settings: Settings) -> Iterator[str]:
    app: FastAPI = create_app(settings)
    with serving(app) as url:
        yield url


def _browse(url: str, profile: Path) -> tuple[str, str]:
    """The page's DOM after its scripts ran, and the browser's console log; every host but
    127.0.0.1 unresolvable, as on a machine without a network."""
    assert CHROMIUM is not None, "Chromium is not installed"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--enable-logging=stderr",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return done.stdout, done.stderr


@needs_browser
def test_swagger_ui_works_offline(live_docs: str, tmp_path: Path) -> None:
    dom, log = _browse(f"{live_docs}/docs", tmp_path)
    for path in ("/v1/events", "/v1/events/batch", "/v1/endpoints/{endpoint_id}/secret/rotate"):
        assert f'data-path="{path}"' in dom, path
    assert "Content Security Policy" not in log


@needs_browser
def test_redoc_works_offline(live_docs: str, tmp_path: Path) -> None:
    dom, _ = _browse(f"{live_docs}/redoc", tmp_path)
    assert "/v1/events/batch" in dom
    assert "Emit an event" in dom


def test_the_docs_allow_no_other_origin(live_docs: str) -> None:
    for page in ("/docs", "/redoc"):
        answer = httpx.get(f"{live_docs}{page}")
        assert answer.status_code == 200
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "http" not in policy
        assert "https://" not in answer.text
    assert httpx.get(f"{live_docs}/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_the_root_is_the_console_behind_its_sign_in(live_docs: str) -> None:
    answer = httpx.get(f"{live_docs}/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in"
