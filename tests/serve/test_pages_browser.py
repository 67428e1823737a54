"""The history pages in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) against a running daemon: what a person sees and clicks, end to end.

Each test saves screenshots of the pages it visits under its temporary directory; with
COMMITTER_SCREENSHOTS=docs/images set, the manual's pictures of the timeline, a file's history, one change,
search, /files and "did you mean" are retaken there (tests/serve/shots.py), at desktop and phone width, from
weeks of real-looking notes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Layout, commit_count, git, wait_for
from tests.serve.shots import body_text, browser, keep, shoot
from tests.serve.test_pages import perform

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
__all__ = ["browser"]  # the module's Chromium (tests/serve/shots.py)


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


WEEKLY = "# Weekly meeting\n\nAttendees: Ana, Ben, Chloé\n\n- Budget: {budget}\n- Release: {release}\n"
WEEKS: list[tuple[int, str, dict[str, str | bytes | None], tuple[str, str] | None]] = [
    # (days ago, time of day (UTC), files written (None: deleted), a rename (old, new)); the first saves all
    (20, "09:10", {"notes/ideas.md": "# Ideas\n\n- a garden diary\n", "notes/todo.md": "- buy milk\n",
                   "meetings/weekly.md": WEEKLY.format(budget="draft", release="second week"),
                   "recipes/pancakes.md": "# Pancakes\n\n- 2 eggs\n- 1 cup of milk\n",
                   "recipes/soup.md": "# Leek soup\n\n- 3 leeks\n- 2 potatoes\n",
                   "journal/2026-11-17.md": "Started keeping notes here.\n"}, None),
    (18, "18:40", {"notes/todo.md": "- buy milk\n- call Sam\n"}, None),
    (16, "08:05", {"journal/2026-11-21.md": "Long walk by the river.\n"}, None),
    (13, "14:30", {"meetings/weekly.md": WEEKLY.format(budget="draft", release="third week")}, None),
    (9, "21:05", {"journal/2026-11-28.md": "Snow in the morning.\n"}, None),
    (6, "10:00", {"meetings/weekly.md": WEEKLY.format(budget="approved", release="third week")}, None),
    (4, "12:15", {}, ("notes/todo.md", "notes/2026/todo.md")),
    (3, "08:10", {"recipes/soup.md": None}, None),  # and put back at 19:30
    (2, "16:45", {"notes/2026/todo.md": "- buy milk\n- call Sam\n- book the rooms\n"}, None),
    (1, "11:20", {"trips/garden.png": b"", "trips/lakes.md": "# Trip to the lakes\n\n![The garden](garden.png)\n"},
     None),
    (1, "19:05", {"recipes/pancakes.md": "# Pancakes\n\n- 2 eggs\n- 1 cup of oat milk\n- a pinch of salt\n"}, None),
    (0, "", {"meetings/weekly.md": WEEKLY.format(budget="approved", release="third week, after the review")
             + "- Next meeting: Thursday\n", "notes/ideas.md": "# Ideas\n\n- a garden diary\n- a bird feeder\n"},
     None),
]


def moment(now: float, days: int, clock: str) -> float:
    """`clock` (HH:MM, UTC) `days` days before `now`; today: 40 minutes ago, or half the day so far when the
    day is younger than that (a run just after midnight)."""
    if not days:
        return now - min(40 * 60, (now % 86400) // 2)
    hours, minutes = (int(part) for part in clock.split(":"))
    return now - now % 86400 - days * 86400 + hours * 3600 + minutes * 60


def test_weeks_of_notes_as_a_newcomer_sees_them(
        browser: Any, layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three weeks of a notes folder saved by the committer itself, on a clock set back (folders, a rename, a
    deletion and its restore, a picture): the timeline, search with names offered as you type, a file's
    history across its rename, one change, the files that exist now, and "did you mean"."""
    from committer.git import fastimport
    from committer.ops.kinds import Restore
    from tests.commit.test_pipeline import make_pipeline, write
    from tests.serve.test_pages_seen import garden, served

    now = time.time()
    clock = {"at": now}
    monkeypatch.setattr(fastimport, "time", types.SimpleNamespace(time=lambda: clock["at"], monotonic=time.monotonic))
    pipeline = make_pipeline(layout)
    shas: list[str] = []
    for days, hhmm, files, renamed in WEEKS:
        clock["at"] = moment(now, days, hhmm)
        for name, content in files.items():
            if content is None:
                (layout.data / name).unlink()
            else:
                write(layout, name, garden(True) if name.endswith(".png") else content)
        if renamed:
            (layout.data / renamed[1]).parent.mkdir(parents=True, exist_ok=True)
            (layout.data / renamed[0]).rename(layout.data / renamed[1])
        shas.append(str(pipeline.commit([""] if not shas else [*files, *(renamed or ())]).sha))
        if "recipes/soup.md" in files and files["recipes/soup.md"] is None:  # wanted back that evening
            clock["at"] = moment(now, days, "19:30")
            perform(pipeline)(Restore(path="recipes/soup.md", rev=shas[-2]))
    with served(pipeline) as base:
        browser.get(f"{base}/")
        subjects = [el.text for el in browser.find_elements("css selector", "article.commit")]
        assert len(subjects) == len(WEEKS) + 1 and any("rename" in s for s in subjects), subjects
        assert "Today" in browser.find_element("css selector", "section.day h2").text
        keep(browser, "timeline", tmp_path, most=1100)  # the first screen: the README shows it
        browser.get(f"{base}/search?q=budget")
        assert "Budget: approved" in body_text(browser)
        box = browser.find_element("id", "find")
        box.clear()
        box.send_keys("WEEK")
        offered = "#find-list a"
        wait_for(lambda: "meetings/weekly.md" in [a.text for a in browser.find_elements("css selector", offered)],
                 timeout=10, what="the names offered as you type")
        keep(browser, "search", tmp_path)
        browser.get(f"{base}/file/notes/2026/todo.md")
        rows = browser.find_elements("css selector", "table.revisions tbody tr")
        assert len(rows) == 4 and "renamed from notes/todo.md" in rows[1].text
        keep(browser, "file", tmp_path)
        browser.get(f"{base}/commit/{shas[-2]}")
        assert "- a pinch of salt" in [td.text for td in browser.find_elements("css selector", "table.unified td.add")]
        keep(browser, "commit", tmp_path)
        browser.get(f"{base}/files")
        assert "recipes/soup.md" in body_text(browser) or "soup.md" in body_text(browser)
        keep(browser, "files", tmp_path)
        browser.get(f"{base}/?path=weekly")
        assert browser.find_elements("id", "did-you-mean")
        keep(browser, "did-you-mean", tmp_path)
