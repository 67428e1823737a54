"""The history pages in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) against a running daemon: what a person sees and clicks, end to end.

Each test saves screenshots of the pages it visits under its temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Layout, commit_count, git, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1100,900")


def _browser_or_skip() -> Any:
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
    driver = _browser_or_skip()
    yield driver
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def shoot(driver: Any, path: Path, width: int = 1100) -> Path:
    """A screenshot of the whole page (not only the window) at `width` CSS pixels."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": max(400, min(height, 4000)), "deviceScaleFactor": 1, "mobile": width < 600})
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": max(400, min(height, 4000)), "deviceScaleFactor": 1, "mobile": width < 600})
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def body_text(driver: Any) -> str:
    """The page's text, or "" while a click's navigation is still replacing the page."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        return str(driver.find_element("tag name", "body").text)
    except StaleElementReferenceException:
        return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def head(layout: Layout) -> str:
    return git(layout.git_dir, "rev-parse", "HEAD").strip()


def trailers(layout: Layout) -> list[dict[str, Any]]:
    out = git(layout.git_dir, "log", "--format=%(trailers:key=BM-Meta,valueonly)%x00")
    return [json.loads(chunk) for chunk in out.split("\0") if chunk.strip()]


def change(layout: Layout, daemon: DaemonProcess, act: Callable[[], object]) -> str:
    """Make a change in the data directory and wait for its commit; the new HEAD."""
    before = commit_count(layout.git_dir)
    act()
    wait_for(lambda: commit_count(layout.git_dir) > before, timeout=15, what="the change committed")
    return head(layout)


@pytest.fixture
def site(layout: Layout, start_daemon: Start, mirror: Path) -> tuple[str, DaemonProcess]:
    """A daemon serving the pages on loopback, pushing to a local mirror."""
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", "--remote", f"file://{mirror}",
                          env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    return f"http://127.0.0.1:{port}", daemon


def test_the_timeline_shows_the_newest_commit_and_its_files(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, tmp_path: Path) -> None:
    base, daemon = site
    notes = layout.data / "notes"
    change(layout, daemon, lambda: (notes.mkdir(), (notes / "ideas.md").write_text("# Ideas\n")))
    change(layout, daemon, lambda: (layout.data / "todo.md").write_text("- buy milk\n"))
    newest = change(layout, daemon, lambda: ((notes / "meeting.md").write_text("# Meeting\n"),
                                             (layout.data / "todo.md").write_text("- buy milk\n- call Sam\n")))
    browser.get(f"{base}/")
    first = browser.find_element("css selector", "article.commit")
    assert first.get_attribute("id") == f"c-{newest}"
    files = [li.text for li in first.find_elements("css selector", "ul.files li")]
    assert any("notes/meeting.md" in f and "added" in f for f in files), files
    assert any("todo.md" in f and "modified" in f for f in files), files
    assert "Today" in browser.find_element("css selector", "section.day h2").text
    wait_for(lambda: "everything is backed up" in (browser.refresh() or browser.find_element(
        "id", "banner").text), timeout=15, what="the banner to show the push")
    shoot(browser, tmp_path / "timeline.png")
    shoot(browser, tmp_path / "timeline-phone.png", width=390)


def test_a_file_history_lists_every_revision_renames_included(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, tmp_path: Path) -> None:
    base, daemon = site
    draft, final = layout.data / "draft.md", layout.data / "final.md"
    v1 = change(layout, daemon, lambda: draft.write_text("My essay\n\nFirst paragraph.\n"))
    v2 = change(layout, daemon, lambda: draft.write_text("My essay\n\nFirst paragraph, better.\n"))
    v3 = change(layout, daemon, lambda: draft.rename(final))
    v4 = change(layout, daemon, lambda: final.write_text("My essay\n\nFirst paragraph, better.\n\nThe end.\n"))
    browser.get(f"{base}/file/final.md")
    rows = browser.find_elements("css selector", "table.revisions tbody tr")
    assert len(rows) == 4
    links = [r.find_element("css selector", "td.links a").get_attribute("href") for r in rows]
    assert [link.split("/commit/")[1].split("#")[0] for link in links] == [v4, v3, v2, v1]
    assert "renamed from draft.md" in rows[1].text
    assert "then named draft.md" in rows[2].text and "then named draft.md" in rows[3].text
    shoot(browser, tmp_path / "file.png")


def test_a_commit_page_shows_an_added_line(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, tmp_path: Path) -> None:
    base, daemon = site
    recipe = layout.data / "recipe.md"
    change(layout, daemon, lambda: recipe.write_text("# Pancakes\n\n- 2 eggs\n- 1 cup of milk\n"))
    sha = change(layout, daemon, lambda: recipe.write_text(
        "# Pancakes\n\n- 2 eggs\n- 1 cup of oat milk\n- a pinch of salt\n"))
    browser.get(f"{base}/commit/{sha}")
    added = [td.text for td in browser.find_elements("css selector", "table.unified td.add")]
    assert "- a pinch of salt" in added
    highlighted = [el.text for el in browser.find_elements("css selector", "td.add ins")]
    assert any("oat" in word for word in highlighted), highlighted
    shoot(browser, tmp_path / "commit.png")
    browser.find_element("link text", "side by side").click()
    wait_for(lambda: "view=split" in browser.current_url, what="the side-by-side page")
    wait_for(lambda: browser.find_elements("css selector", "table.split"), what="the side-by-side table")
    assert "- a pinch of salt" in [td.text for td in browser.find_elements("css selector", "table.split td.add")]
    shoot(browser, tmp_path / "commit-side-by-side.png")


def test_restore_clicked_end_to_end(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, tmp_path: Path) -> None:
    base, daemon = site
    page = layout.data / "journal.md"
    change(layout, daemon, lambda: page.write_text("Dear diary, today was good.\n"))
    change(layout, daemon, lambda: page.write_text("Oops, I deleted everything by mistake\n"))
    before = commit_count(layout.git_dir)
    browser.get(f"{base}/file/journal.md")
    rows = browser.find_elements("css selector", "table.revisions tbody tr")
    rows[-1].find_element("css selector", "a.restore").click()  # the first version
    wait_for(lambda: "/restore?" in browser.current_url, what="the confirmation page")
    plan = browser.find_element("css selector", "ul.plan").text
    assert "put back journal.md" in plan
    assert page.read_text().startswith("Oops")  # asking changed nothing
    shoot(browser, tmp_path / "restore-confirm.png")
    browser.find_element("id", "confirm-restore").click()
    wait_for(lambda: "/commit/" in browser.current_url, timeout=30, what="the new commit's page")
    assert page.read_text() == "Dear diary, today was good.\n"
    assert "Restored journal.md" in browser.find_element("css selector", "p.done").text
    assert commit_count(layout.git_dir) == before + 1
    restores = [t for t in trailers(layout) if t.get("op") == "restore"]
    assert len(restores) == 1 and restores[0]["path"] == "journal.md"
    assert browser.current_url.split("/commit/")[1].split("?")[0] == head(layout)
    shoot(browser, tmp_path / "restore-done.png")


class _Attacker(BaseHTTPRequestHandler):
    """Another site (another origin: another port) whose page posts to the daemon's restore."""

    target = ""
    csrf = ""

    def do_GET(self) -> None:
        body = f"""<!doctype html><title>another site</title>
<form id="bare" method="post" action="{self.target}/restore">
<input name="path" value="journal.md"><input name="rev" value="HEAD"><button id="go-bare">win a prize</button></form>
<form id="stolen" method="post" action="{self.target}/restore">
<input name="path" value="journal.md"><input name="rev" value="HEAD"><input name="csrf" value="{self.csrf}">
<button id="go-stolen">win another prize</button></form>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@contextlib.contextmanager
def attacker(target: str, csrf: str) -> Iterator[str]:
    handler = type("Handler", (_Attacker,), {"target": target, "csrf": csrf})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_cross_site_post_is_refused_and_changes_nothing(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, tmp_path: Path) -> None:
    base, daemon = site
    page = layout.data / "journal.md"
    change(layout, daemon, lambda: page.write_text("first\n"))
    change(layout, daemon, lambda: page.write_text("second\n"))
    browser.get(f"{base}/restore?path=journal.md&rev={git(layout.git_dir, 'rev-parse', 'HEAD~1').strip()}")
    csrf = browser.find_element("name", "csrf").get_attribute("value")  # even a stolen token does not help
    before = commit_count(layout.git_dir)
    with attacker(base, csrf) as evil:
        for button in ("go-bare", "go-stolen"):
            browser.get(f"{evil}/")
            browser.find_element("id", button).click()
            wait_for(lambda: browser.current_url.startswith(base), what="the post to arrive")
            wait_for(lambda: "Refused" in body_text(browser), what="the refusal")
    shoot(browser, tmp_path / "cross-site-refused.png")
    assert page.read_text() == "second\n" and commit_count(layout.git_dir) == before
    refused = daemon.wait_event("page_refused", count=2)
    assert all(e["reason"] == "cross-site request" for e in refused)


def test_a_non_loopback_bind_without_a_token_serves_no_page(
        browser: Any, layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    port = free_port()
    daemon = start_daemon("--http", f"0.0.0.0:{port}", env={"COMMITTER_UI_TOKEN": ""})
    (layout.data / "secret-plans.md").write_text("the plans\n")
    daemon.wait_event("git_commit")
    off = daemon.wait_event("pages_off")[0]
    assert "ui_token" in off["action"]
    for path in ("/", "/file/secret-plans.md", f"/commit/{head(layout)}"):
        browser.get(f"http://127.0.0.1:{port}{path}")
        text = browser.find_element("tag name", "body").text
        assert "secret-plans" not in text and "the plans" not in text
        assert "the history pages are off" in text
    shoot(browser, tmp_path / "pages-off.png")
    browser.get(f"http://127.0.0.1:{port}/healthz")
    assert '"healthy": true' in browser.find_element("tag name", "body").text


def test_a_non_loopback_bind_with_a_token_asks_for_it(
        browser: Any, layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    token = "correct-horse-battery-staple-42"
    token_file = tmp_path / "ui_token"
    token_file.write_text(token + "\n")
    port = free_port()
    daemon = start_daemon("--http", f"0.0.0.0:{port}", "--ui-token-file", str(token_file))
    (layout.data / "plans.md").write_text("the plans\n")
    daemon.wait_event("git_commit")
    browser.delete_all_cookies()
    browser.get(f"http://127.0.0.1:{port}/file/plans.md")
    assert "/login" in browser.current_url and "the plans" not in browser.page_source
    shoot(browser, tmp_path / "login.png")
    browser.find_element("name", "token").send_keys("wrong-token-000000")
    browser.find_element("css selector", "form.login button").click()
    wait_for(lambda: "That token is not right" in body_text(browser), what="the wrong token refused")
    browser.find_element("name", "token").send_keys(token)
    browser.find_element("css selector", "form.login button").click()
    wait_for(lambda: browser.current_url.endswith("/file/plans.md"), what="the page asked for first")
    cookie = browser.get_cookie("committer_ui")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and token not in cookie["value"]
    browser.find_element("css selector", "form.logout button").click()
    wait_for(lambda: "/login" in browser.current_url, what="logged out")
    assert browser.get_cookie("committer_ui") is None


def test_an_html_file_is_shown_as_text(
        browser: Any, site: tuple[str, DaemonProcess], layout: Layout, tmp_path: Path) -> None:
    base, daemon = site
    markup = ('<script>document.title = "pwned"</script>\n<h1 id="injected">Injected</h1>\n'
              '<img src=x onerror="document.title=\'pwned\'">\n')
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>document.title="pwned"</script></svg>\n'
    sha = change(layout, daemon, lambda: ((layout.data / "page.html").write_text(markup),
                                          (layout.data / "logo.svg").write_text(svg)))
    for name in ("page.html", "logo.svg"):
        browser.get(f"{base}/view/{sha}/{name}")
        assert browser.title != "pwned"
        assert browser.find_elements("id", "injected") == []
        shown = browser.find_element("css selector", "pre.content").text
        assert shown.strip() == (markup if name == "page.html" else svg).strip()
    shoot(browser, tmp_path / "html-as-text.png")
    browser.get(f"{base}/commit/{sha}")
    assert browser.title != "pwned" and browser.find_elements("id", "injected") == []
    assert '<h1 id="injected">Injected</h1>' in [td.text for td in browser.find_elements("css selector", "td.add")]
