"""Finding things on the history pages over real HTTP: /search (names, content, past versions), the JSON the
search box reads as you type, /files by folder, and "did you mean" for a path with no history."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from committer.core.errors import ConfigError
from committer.ops import search as finder
from committer.serve.access import Access
from committer.serve.pages import Pages
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, wait_for
from tests.serve.shots import PHONE, body_text, browser, shoot  # noqa: F401 - browser: the fixture
from tests.serve.test_pages import Site, perform, serving

BAD = os.fsdecode(b"bad\xff.md")


@pytest.fixture
def site(layout: Layout) -> Iterator[Site]:
    """v1: meetings/weekly.md with a draft budget, odd names; v2: the budget approved."""
    pipeline = make_pipeline(layout)
    write(layout, "meetings/weekly.md", "Agenda\nBudget: draft\n")
    write(layout, "notes/ideas.md", "<script>alert(1)</script> ideas\n")
    write(layout, "-n.md", "dash\n")
    write(layout, BAD, "latin\n")
    revs = {"v1": str(pipeline.commit([""]).sha)}
    write(layout, "meetings/weekly.md", "Agenda\nBudget: approved\n")
    revs["v2"] = str(pipeline.commit(["meetings/weekly.md"]).sha)
    state: dict[str, Any] = {"push": {"remote": None, "pending_commits": 0, "last_error": None}}
    access = Access("open")
    pages = Pages(pipeline.repo, access, lambda: state, perform(pipeline))
    with serving(pages) as port:
        yield Site(port, pipeline, layout, access, revs, state)


def test_search_lists_names_and_lines_of_the_newest_version(site: Site) -> None:
    page = site.get("/search?q=WEEK")
    assert page.status == 200 and 'href="/file/meetings/weekly.md"' in page.text
    lines = site.get("/search?q=budget").text
    assert "Budget: approved" in lines and "draft" not in lines and "Search past versions too" in lines
    assert f"/view/{site.revs['v2']}/meetings/weekly.md" in lines


def test_search_in_past_versions_on_request(site: Site) -> None:
    page = site.get("/search?q=draft&history=1").text
    assert 'id="found-past"' in page and f"/commit/{site.revs['v2']}" in page and f"/commit/{site.revs['v1']}" in page
    assert "Budget: draft" in page and ">went<" in page and ">came<" in page
    assert 'id="nothing-found"' in site.get("/search?q=draft").text


def test_search_shows_names_and_lines_escaped_and_takes_odd_text_literally(site: Site) -> None:
    page = site.get("/search?q=script").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    dash = site.get("/search?q=-n").text
    assert 'href="/file/-n.md"' in dash
    latin = site.get("/search?q=latin").text
    assert "bad\\xff.md" in latin and '/bad%FF.md">' in latin
    assert site.get("/search?q=" + "x" * 300).status == 200  # too long: said on the page, not a failure


def test_the_search_box_json_offers_names_as_you_type(site: Site) -> None:
    answer = site.get("/search/names?q=eekl")
    assert answer.status == 200 and answer.headers["content-type"].startswith("application/json")
    data = json.loads(answer.body)
    assert data == {"names": [{"path": "meetings/weekly.md", "href": "/file/meetings/weekly.md"}], "more": False}
    assert json.loads(site.get("/search/names?q=").body) == {"names": [], "more": False}


def test_a_path_with_no_history_offers_the_names_it_may_mean(site: Site) -> None:
    for url in ("/?path=weekly", "/file/weekly"):
        page = site.get(url)
        assert page.status == 404, url
        assert "Nothing has been saved yet" not in page.text
        assert 'id="did-you-mean"' in page.text and 'href="/file/meetings/weekly.md"' in page.text
    assert site.get("/?path=meetings").status == 200  # a real folder: its timeline
    assert site.get("/file/meetings/weekly.md").status == 200


def test_files_lists_what_exists_now_by_folder(site: Site) -> None:
    page = site.get("/files")
    assert page.status == 200
    text = page.text
    assert text.index('href="/files?in=meetings"') < text.index('href="/file/meetings/weekly.md"')
    assert 'href="/file/-n.md"' in text and "bad\\xff.md" in text
    inner = site.get("/files?in=notes").text
    assert 'href="/file/notes/ideas.md"' in inner and "weekly.md" not in inner
    assert site.get("/files?in=nosuch").status == 404
    assert site.get("/files?in=../etc").status == 404



def test_on_or_before_takes_the_dates_the_cli_takes(site: Site) -> None:
    """A bare day includes the whole day; `2 hours ago` is before this history; a text that is not a date
    is a 404 naming the forms."""
    today = datetime.date.today().isoformat()
    for until in (today, "today", "now"):
        page = site.get(f"/?until={until}")
        assert page.status == 200 and site.revs["v2"][:10] in page.text, until
    early = site.get("/?until=2+hours+ago")
    assert early.status == 200 and site.revs["v1"][:10] not in early.text
    assert "Nothing was saved on or before 2 hours ago: the history starts on" in early.text
    wrong = site.get("/?until=next+tuesday")
    assert wrong.status == 404 and "yesterday 18:00" in wrong.text


def test_a_search_says_when_its_caps_cut_it_short(site: Site) -> None:
    """The caps on names, lines and past changes are said, never silent."""
    repo = site.pipeline.repo
    stopped: list[str] = []
    assert len(finder.names(repo, "md", stopped, most=1)) == 1
    assert stopped == ["only the first 1 of 4 matching names are listed"]
    stopped = []
    went = finder.past(repo, "draft", stopped, commits=1)
    assert [(hit.sha, hit.came) for hit in went] == [(site.revs["v2"], False)]
    assert stopped == ["past versions: only the newest 1 changes that hold the text are looked at"]
    stopped = []
    assert len(finder.past(repo, "draft", stopped, commits=2)) == 2 and stopped == []
    found = finder.search(repo, "a", history=True)
    assert found.names and found.lines and not found.stopped
    with pytest.raises(ConfigError):
        finder.search(repo, "two\nlines")

@pytest.mark.integration
def test_typing_in_the_search_box_offers_matching_names_in_chromium(
        site: Site, browser: Any, tmp_path: Path) -> None:  # noqa: F811 - the fixture imported above
    """Search as you type in a real browser (the page's own script under its CSP): a part of a name in
    any case lists the file, a click opens its history; Enter searches content."""
    base = f"http://127.0.0.1:{site.port}"
    browser.get(f"{base}/")
    box = browser.find_element("id", "find")
    box.send_keys("WeEk")
    wait_for(lambda: [a.text for a in browser.find_elements("css selector", "#find-list a")][:1] == [
        "meetings/weekly.md"], timeout=10, what="the names offered as you type")
    shoot(browser, tmp_path / "search-as-you-type.png")
    browser.find_element("css selector", "#find-list a").click()
    wait_for(lambda: browser.current_url.endswith("/file/meetings/weekly.md"), what="the file's history")
    box = browser.find_element("id", "find")
    box.send_keys("approved\n")
    wait_for(lambda: "/search?q=approved" in browser.current_url, what="the search page")
    wait_for(lambda: "Budget: approved" in body_text(browser), what="the line found")
    shoot(browser, tmp_path / "search.png")
    browser.get(f"{base}/?path=weekly")
    shoot(browser, tmp_path / "did-you-mean.png")
    browser.find_element("css selector", "#did-you-mean a").click()
    wait_for(lambda: browser.current_url.endswith("/file/meetings/weekly.md"), what="the name it meant")
    browser.get(f"{base}/files")
    assert "weekly.md" in body_text(browser)
    shoot(browser, tmp_path / "files.png")
    shoot(browser, tmp_path / "files-phone.png", width=PHONE)
