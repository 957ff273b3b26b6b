"""Fixtures of the browser tests: one JupyterLab server and one headless Chromium per session.

Screenshots and the latency table go to ``artifacts/browser/`` (or ``UCGM_LAB_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .lab import CHROMIUM_ARGS, INIT_SCRIPT, ROOT, LabServer, chromium_path

ARTIFACTS = Path(os.environ.get("UCGM_LAB_ARTIFACTS", ROOT / "artifacts")) / "browser"
LATENCY: list[str] = []


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab serving a temporary copy of notebooks/ (and synthetic/ for the self-tests)."""
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    (root / "synthetic").mkdir()
    server = LabServer(
        root,
        tmp_path_factory.mktemp("lab-home"),
        env={"UCGM_LAB_TEST_MODE": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise RuntimeError(
            "Playwright for Python is missing: pip install -e '.[dev]' (or skip with "
            "-m 'not browser')."
        ) from exc
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LATENCY:
        terminalreporter.section("widget latency in headless Chromium (key press to new figure)")
        for line in LATENCY:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"screenshots: {ARTIFACTS}")
