"""Shared fixtures: the project root on sys.path, MNIST loaded once, headless Chromium."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


BROWSER_TESTS = Path(__file__).resolve().parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in tests/browser drives a real browser, so `make test-fast` leaves it out."""
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def own_user_files(tmp_path_factory):
    """No test reads or writes the user's samples or runs (whose choice of model would change
    what the app serves): each session gets empty ones, which tests may point elsewhere."""
    from digits.app.training_runner import RUNS_ENV
    from digits.app.user_store import DB_ENV

    folder = tmp_path_factory.mktemp("user")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNS_ENV, str(folder / "runs"))
        patch.setenv(DB_ENV, str(folder / "samples.sqlite"))
        yield folder


@pytest.fixture(scope="session")
def mnist():
    from digits.data.mnist import load_mnist

    return load_mnist()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one per test module."""
    from helpers.browser import launch_chromium
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_url(request):
    """The app served for one test module, with the committed model whatever DIGITS_MODEL the
    shell running the tests may have set; its log is artifacts/streamlit_<module>.log."""
    from helpers.browser import SCREENSHOTS, streamlit_server

    from model_loader import MODEL_PATH

    log = SCREENSHOTS.parent / f"streamlit_{request.module.__name__.rsplit('.', 1)[-1]}.log"
    with streamlit_server("app.py", log, env={"DIGITS_MODEL": str(MODEL_PATH)}) as (url, _):
        yield url
