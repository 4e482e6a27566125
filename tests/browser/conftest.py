"""A real browser for the console tests: Playwright driving Debian's chromium (no browser
download). Outside CI the tests skip, saying why, when no chromium is installed; `.ci/run`
installs it, and under CI a missing browser fails instead of skipping.

A failing test leaves a screenshot of every page it had open in
`$INDELIBLE_SCREENSHOT_DIR` (default: <pytest's temporary directory>/screenshots).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_path() -> str | None:
    configured = os.environ.get("INDELIBLE_CHROMIUM")
    for path in ((configured,) if configured else ()) + CANDIDATES:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium():
    """One browser per module, stopped with it: Playwright's sync API runs an event loop in
    this thread while it is started, and later tests that call asyncio.run() need it gone."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium (.ci/run installs it): none found")
        pytest.skip("no chromium found (apt-get install chromium, or set INDELIBLE_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # the test extra is not installed
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def pages(request, chromium, tmp_path_factory):
    """New browser contexts for a test (each its own cookie jar); screenshots on failure."""
    contexts = []

    def new_page():
        context = chromium.new_context(accept_downloads=True, timezone_id="Europe/Berlin")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()
    yield new_page
    if request.node.stash.get(FAILED, False):
        folder = Path(os.environ.get("INDELIBLE_SCREENSHOT_DIR")
                      or tmp_path_factory.getbasetemp() / "screenshots")
        folder.mkdir(parents=True, exist_ok=True)
        for c, context in enumerate(contexts):
            for p, page in enumerate(context.pages):
                target = folder / f"{request.node.name}-{c}-{p}.png"
                try:
                    page.screenshot(path=str(target), full_page=True)
                    print(f"screenshot of {page.url}: {target}")
                except Exception as e:  # noqa: BLE001 - a closed page must not hide the failure
                    print(f"no screenshot of {page.url}: {e}")
    for context in contexts:
        context.close()
