"""Browser fixtures: the real service (the integration fixtures' PostgreSQL, Redis and `celery worker`) served
over real HTTP by uvicorn, and Debian's chromium driven by Playwright. Nothing is downloaded: Playwright is
pointed at /usr/bin/chromium (`scripts/test` installs it when missing)."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import BrowserContext, Page, sync_playwright

from api.app import create_app
from shared.settings import Settings
from tests.integration.conftest import (  # noqa: F401  (fixtures, shared with the integration tests)
    WorkerProcess,
    clean_state,
    database_url,
    engine,
    pg_admin_url,
    redis_url,
    settings,
    start_worker,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class LiveService:
    url: str
    app: FastAPI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live(settings: Settings) -> Iterator[LiveService]:  # noqa: F811
    """The app served by uvicorn in a thread of this process: a real HTTP server the browser can reach."""
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    yield LiveService(url=f"http://127.0.0.1:{port}", app=app)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def media_worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:  # noqa: F811
    """One worker for photos and videos alike (and maintenance, gdpr), as `veil worker` runs by default."""
    w = start_worker(settings, tmp_path_factory.mktemp("worker") / "worker.log",
                     queues="images,videos,maintenance,gdpr")
    yield w
    w.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserContext]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: ./scripts/test installs Debian's chromium package")
    profile = tempfile.mkdtemp(prefix="veil-chromium-")
    with sync_playwright() as playwright:
        # Playwright insists on owning --user-data-dir: a persistent context on a fresh temporary profile.
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Dashboard:
    page: Page
    console_errors: list[str]
    requested: list[str]


@pytest.fixture
def open_dashboard(browser: BrowserContext, live: LiveService) -> Iterator[object]:
    """open_dashboard(key) -> Dashboard: a new tab (its own sessionStorage) signed in with the key."""
    opened: list[Page] = []

    def open_with(key: str) -> Dashboard:
        page = browser.new_page()
        opened.append(page)
        errors: list[str] = []
        requested: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requested.append(r.url))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{live.url}/dashboard")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Use key").click()
        page.locator("#who").wait_for(state="visible")
        return Dashboard(page=page, console_errors=errors, requested=requested)

    yield open_with
    for page in opened:
        page.close()
