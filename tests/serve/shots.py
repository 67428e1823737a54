"""The headless Chromium the page tests drive (Debian's chromium and chromium-driver, through Selenium) and
the screenshots they take: under the test's temporary directory, and also in COMMITTER_SCREENSHOTS (a folder,
relative to the repository unless absolute) when it is set: `COMMITTER_SCREENSHOTS=docs/images` retakes the
manual's pictures, at desktop (1280) and phone (390) CSS pixels wide."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1100,900", "--hide-scrollbars")
DESKTOP, PHONE = 1280, 390
PHONE_MOST = 1100  # a phone screenshot: a screen or so, not the whole page
ROOT = Path(__file__).resolve().parents[2]


def browser_or_skip() -> Any:
    """A headless Chromium, or the test skipped with one line saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("browser tests (Chromium): selenium is not installed (pip install -e '.[test]')")
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            pytest.skip(f"browser tests (Chromium): {path} is missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="committer-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except Exception as exc:  # the browser cannot be had here: say so in one line
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"browser tests: headless Chromium did not start: {str(exc).splitlines()[0][:200]}")
    driver.set_page_load_timeout(30)
    driver.profile_dir = profile
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole module."""
    driver = browser_or_skip()
    yield driver
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def body_text(driver: Any) -> str:
    """The page's text, or "" while a click's navigation is still replacing the page."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        return str(driver.find_element("tag name", "body").text)
    except StaleElementReferenceException:
        return ""


def shoot(driver: Any, path: Path, width: int = DESKTOP, most: int = 4000) -> Path:
    """A screenshot of the page `width` CSS pixels wide (a phone below 600), as tall as the page up to
    `most` pixels."""
    def size() -> None:
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": max(400, min(height, most)), "deviceScaleFactor": 1, "mobile": width < 600})

    size()
    size()  # the page's height at this width
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def folder(tmp_path: Path) -> Path:
    """Where a test's screenshots go: COMMITTER_SCREENSHOTS when it is set, else the test's own folder."""
    wanted = os.environ.get("COMMITTER_SCREENSHOTS")
    if not wanted:
        return tmp_path
    target = Path(wanted) if Path(wanted).is_absolute() else ROOT / wanted
    target.mkdir(parents=True, exist_ok=True)
    return target


def keep(driver: Any, name: str, tmp_path: Path, most: int = 4000) -> None:
    """The page as `name`.png at desktop width (up to `most` pixels tall) and as phone-`name`.png at phone
    width (a screen or so: up to 1100 pixels)."""
    target = folder(tmp_path)
    shoot(driver, target / f"{name}.png", width=DESKTOP, most=most)
    shoot(driver, target / f"phone-{name}.png", width=PHONE, most=min(most, PHONE_MOST))
