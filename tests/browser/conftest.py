"""The browser tier: headless Chromium (Debian's chromium and chromium-driver) against the e2e tier's
real `airflow standalone` and the lab.

The standalone fixtures are the e2e tier's own (imported, not copied). Chromium and its driver
come from Debian's packages (.ci/run installs them): the driver is given by path, so Selenium
Manager never runs and nothing is downloaded at test time. Each test gets a fresh profile
(user-data-dir); screenshots go to .artifacts/browser/ (git-ignored), and on a failure the page
the browser was on is saved there too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts import airflow_home
from tests.e2e.airflow_under_test import pytest_runtest_makereport  # noqa: F401  (marks failed tests)
from tests.e2e.conftest import airflow, standalone  # noqa: F401  (the e2e tier's fixtures)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = airflow_home.ROOT / ".artifacts" / "browser"
# What the issue asks for, plus a window tall enough that an approval request fits on one screenshot.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1400,1800"]
ARTIFACTS_USED = pytest.StashKey[Path]()   # set once a test of this session took screenshots


@pytest.fixture(scope="session")
def artifacts(request) -> Path:
    """The screenshot folder, emptied once per session so it shows only this run's pictures."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    request.config.stash[ARTIFACTS_USED] = ARTIFACTS
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter, config):
    """The screenshots' paths at the end of the output, passed or failed (CI keeps them as artifacts)."""
    folder = config.stash.get(ARTIFACTS_USED, None)
    if folder:
        terminalreporter.write_sep("-", "browser screenshots")
        for picture in sorted(folder.glob("*.png")):
            terminalreporter.write_line(str(picture))


@pytest.fixture
def browser(request, tmp_path, artifacts):
    """A headless Chromium (Selenium WebDriver) with a fresh profile, quit after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    assert not missing, (f"{', '.join(missing)} missing: install Debian's browser with "
                         "`apt-get install chromium chromium-driver` (.ci/run does it in CI).")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
        if getattr(request.node, "e2e_failed", False):
            path = artifacts / f"failed-{request.node.name}.png"
            driver.save_screenshot(str(path))
            print(f"the page at the failure ({driver.current_url}): {path}")
    finally:
        driver.quit()
