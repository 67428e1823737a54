"""The fleet's overview page in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium), as an operator uses it: filtering by status and organisation with the form, an error message that
holds markup shown as text, and a phone's width without sideways scrolling.

Each test saves screenshots of the pages it visits under its temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from committer.fleet import schema
from committer.fleet.config import FleetConfig
from committer.fleet.db import engine
from committer.fleet.store import BranchState, NewRepository, Store
from committer.fleet.web import serve_http
from tests.conftest import wait_for
from tests.serve.shots import browser, shoot

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the module's Chromium (tests/serve/shots.py)
SCRIPT_ERROR = '<script>document.title="owned"</script><b>clone failed</b>: https://git.example.org/acme/site.git'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fleet of two organisations, its repositories in every state, served on loopback."""
    root = tmp_path_factory.mktemp("fleet")
    db = engine(f"sqlite:///{root / 'fleet.db'}")
    schema.upgrade(db)
    store = Store(db, root / "repos")
    acme, globex = store.create_organisation("acme").id, store.create_organisation("globex").id
    long_name = "a-repository-whose-name-goes-on-and-on-without-a-single-space-to-break-it-at"
    for org, name, status, error in (
            (acme, "notes", "active", ""), (acme, "site", "failed", SCRIPT_ERROR), (acme, "wiki", "mirroring", ""),
            (globex, "infra", "active", ""), (globex, long_name, "failed", "fatal: " + "x" * 300),
            (globex, "old", "archived", "")):
        repo = store.create_repository(NewRepository(name=name, organisation_id=org,
                                                     source_url=f"https://git.example.org/{name}.git"))
        store.set_status(repo.id, status, error)
        if status == "active":
            store.record_snapshot(repo.id, [BranchState("main", "c" * 40, True)], 1234, "c" * 40, "main")
    server = serve_http(FleetConfig(repos_dir=root / "repos", http="127.0.0.1:0"), store)
    yield f"http://127.0.0.1:{server.port}"
    server.stop()
    db.dispose()


def rows(driver: Any) -> list[str]:
    return [row.find_element("css selector", "td.name strong").text
            for row in driver.find_elements("css selector", "table.repos tbody tr")]


def choose(driver: Any, field: str, value: str) -> None:
    from selenium.webdriver.support.select import Select

    Select(driver.find_element("id", field)).select_by_value(value)


def test_filtering_by_status_then_by_organisation(browser: Any, site: str, tmp_path: Path) -> None:
    browser.get(f"{site}/")
    assert len(rows(browser)) == 6
    shoot(browser, tmp_path / "overview.png")
    choose(browser, "status", "failed")
    browser.find_element("id", "show").click()
    wait_for(lambda: "status=failed" in browser.current_url, what="the failed repositories")
    assert rows(browser) == ["acme/site", next(r for r in rows(browser) if r.startswith("globex/"))]
    assert {r.get_attribute("data-status") for r in browser.find_elements("css selector", "tbody tr")} == {"failed"}
    choose(browser, "organisation", "acme")  # the status chosen before stays chosen
    browser.find_element("id", "show").click()
    wait_for(lambda: "organisation=acme" in browser.current_url, what="acme's failed repositories")
    assert rows(browser) == ["acme/site"]
    choose(browser, "status", "")
    browser.find_element("id", "show").click()
    wait_for(lambda: browser.current_url.endswith("?organisation=acme&status="), what="every status of acme")
    assert rows(browser) == ["acme/notes", "acme/site", "acme/wiki"]
    shoot(browser, tmp_path / "overview-acme.png")


def test_an_error_message_with_markup_is_shown_as_text(browser: Any, site: str, tmp_path: Path) -> None:
    browser.get(f"{site}/?organisation=acme&status=failed")
    error = browser.find_element("css selector", "tbody tr td.error")
    assert error.text == SCRIPT_ERROR
    assert error.find_elements("css selector", "script, b") == []
    assert browser.title != "owned"
    shoot(browser, tmp_path / "overview-error.png")


def test_a_phone_reads_the_page_without_scrolling_sideways(browser: Any, site: str, tmp_path: Path) -> None:
    browser.get(f"{site}/")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        browser.refresh()
        widths = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"the page is {widths[0]}px wide on a {widths[1]}px screen"
        labels = browser.execute_script(
            "return getComputedStyle(document.querySelector('tbody td[data-label]'), '::before').content")
        assert "Status" in labels  # each value says what it is once the table's header is hidden
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    shoot(browser, tmp_path / "overview-phone.png", width=390)
