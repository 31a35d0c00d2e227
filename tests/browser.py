"""A project's browser demo opened in Debian's Chromium (headless, driven by Playwright) over its exported model."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from common.web_demo import CHROMIUM, make_server
from common.web_demo import CHROMIUM_FLAGS as FLAGS

# Skipped only outside CI: under CI=true a missing browser fails the run instead of passing quietly.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="Debian chromium missing: run `make install-all`"
)
SETTLED = "['ready', 'error', 'missing'].includes(document.body.dataset.state)"


def watch_errors(page: Any, errors: list[str]) -> None:
    """Append the page's uncaught errors and console errors (failed requests included) to `errors`."""
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)


@contextmanager
def demo_page(
    project: str, output_dir: Path, *, timeout_ms: int = 90_000, viewport: dict[str, int] | None = None
) -> Iterator[tuple[Any, list[str]]]:
    """`demo.html?project=<project>` with the TF.js model exported into `output_dir`, loaded and ready.

    Yields the Playwright page and the list of page errors and console errors (filled as they happen); the page
    must reach the state "ready" (not "error" or "missing") within `timeout_ms`, or the test fails with the page's
    text.
    """
    from playwright.sync_api import sync_playwright

    server = make_server("127.0.0.1", 0, output_dir.parent, {project: output_dir / "export" / "tfjs"})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page(viewport=viewport) if viewport else browser.new_page()
                errors: list[str] = []
                watch_errors(page, errors)
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/demo.html?project={project}")
                page.wait_for_function(SETTLED, timeout=timeout_ms)
                assert page.evaluate("document.body.dataset.state") == "ready", page.inner_text("main")
                yield page, errors
            finally:
                browser.close()
    finally:
        server.shutdown()
