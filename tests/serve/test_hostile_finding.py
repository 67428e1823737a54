"""The history pages against what a careless or hostile history or client brings: a submodule or a symbolic
link pushed from elsewhere, a folder of more files than a page lists, a history too long to walk for a name
never saved, a past-versions search over a commit of a great many files, a note's query-only link, and every
new page behind the ui token."""

from __future__ import annotations

import datetime
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from committer.git import revs
from committer.ops import search as finder
from committer.serve import finding, history, markdown
from committer.serve.access import Access
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from tests.serve.test_hostile_input import git_bytes
from tests.serve.test_pages import TOKEN, Site, fetch, perform, site  # noqa: F401 (site: a fixture)


def commit_entries(git_dir: Path, entries: list[tuple[bytes, bytes, bytes]]) -> str:
    """A commit on main adding (mode, object id, name) entries as they are, made with plumbing."""
    index_env = {b"GIT_INDEX_FILE": bytes(git_dir / "hostile-index")}
    git_bytes(git_dir, "read-tree", "main", env=index_env)
    git_bytes(git_dir, "update-index", "--index-info",
              input=b"".join(mode + b" " + sha + b"\t" + name + b"\n" for mode, sha, name in entries), env=index_env)
    tree = git_bytes(git_dir, "write-tree", env=index_env)
    (git_dir / "hostile-index").unlink()
    sha = git_bytes(git_dir, "commit-tree", tree, "-p", "main", input=b"from elsewhere\n").decode()
    git_bytes(git_dir, "update-ref", "refs/heads/main", sha)
    return sha


def fast_import(git_dir: Path, commits: list[list[tuple[bytes, bytes]]]) -> None:
    """Commits on main (after its tip) each setting (name, content) files, written by git fast-import."""
    out = []
    for n, files in enumerate(commits):
        out.append(b"commit refs/heads/main\ncommitter t <t@t> %d +0000\ndata 2\nc\n" % (1_700_000_000 + n))
        if n == 0:
            out.append(b"from refs/heads/main^0\n")
        out += [b"M 100644 inline %s\ndata %d\n%s\n" % (name, len(data), data) for name, data in files]
    subprocess.run(["git", f"--git-dir={git_dir}", "fast-import", "--quiet"], input=b"".join(out), check=True)


def test_a_submodule_pushed_from_elsewhere_is_a_404_that_says_so_on_view_and_raw(site: Site) -> None:  # noqa: F811
    """A gitlink (a commit of another repository, not in this one) is no file: /view and /raw say so (404),
    never a 500 with a traceback; its history, the commit and the file list still answer."""
    sha = commit_entries(site.layout.git_dir, [(b"160000", b"1" * 40, b"vendor/lib")])
    for path in (f"/view/{sha}/vendor/lib", f"/raw/{sha}/vendor/lib"):
        answer = site.get(path)
        assert answer.status == 404 and "is a submodule" in answer.text, (path, answer.status, answer.text[:200])
    for path in ("/file/vendor/lib", f"/commit/{sha}", "/files", "/files?in=vendor", "/search?q=lib"):
        assert site.get(path).status == 200, path


def test_a_symbolic_link_is_shown_as_the_name_it_points_to_never_rendered_nor_followed(
        site: Site) -> None:  # noqa: F811
    """`secrets.md -> /etc/passwd` stored as a link: the view shows the link's text as text (not as a note,
    not the target's content), and /raw is a download of the link's text."""
    target = b"/etc/passwd"
    blob = git_bytes(site.layout.git_dir, "hash-object", "-w", "--stdin", input=target)
    sha = commit_entries(site.layout.git_dir, [(b"120000", blob, b"secrets.md")])
    view = site.get(f"/view/{sha}/secrets.md")
    assert view.status == 200 and 'id="link-note"' in view.text
    assert '<pre class="content">/etc/passwd</pre>' in view.text and 'id="note"' not in view.text
    assert "root:" not in view.text and 'id="note-switch"' not in view.text
    raw = site.get(f"/raw/{sha}/secrets.md")
    assert raw.body == target and raw.headers["content-disposition"].startswith("attachment")


def test_files_lists_at_most_files_max_entries_of_one_folder(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A folder holding more entries than a page lists: the first FILES_MAX, and a line saying so."""
    monkeypatch.setattr(finding, "FILES_MAX", 5)
    fast_import(site.layout.git_dir, [[(b"crowd/f%02d.md" % n, b"x") for n in range(12)]])
    page = site.get("/files?in=crowd")
    assert page.status == 200 and page.text.count('<li><a href="/file/crowd/f') == 5
    assert 'id="files-cut"' in page.text
    assert 'id="files-cut"' not in site.get("/files?in=notes").text


def test_did_you_mean_walks_the_history_only_until_its_deadline(site: Site) -> None:  # noqa: F811
    """A name never saved, on a long history: past its deadline the walk stops and the name is taken to have
    a history (its page says what there is); the newest version is looked at first, with no walk at all."""
    fast_import(site.layout.git_dir, [[(b"n.md", b"%d" % n)] for n in range(3000)])
    repo = site.pipeline.repo
    assert finding.no_history(repo, "never/saved.md")
    assert not finding.no_history(repo, "never/saved.md", seconds=0.001)
    assert not finding.no_history(repo, "n.md", seconds=0.001)  # in the newest version: no walk
    assert site.get("/?path=never/saved.md").status == 404


def test_a_past_versions_search_over_a_commit_of_many_files_is_bounded(site: Site) -> None:  # noqa: F811
    """One commit adding 12,000 files that hold the text (names of 200 characters: more than a command line
    holds): the past-versions search lists the first ones and says it stopped, never a failed page."""
    name = b"folder-of-many/" + b"n" * 180 + b"-%05d.md"
    fast_import(site.layout.git_dir, [[(name % n, b"needle\n") for n in range(12_000)]])
    stopped: list[str] = []
    found = finder.past(site.pipeline.repo, "needle", stopped, seconds=30.0)
    assert len(found) == finder.LINES_MAX and all(line.text == "needle" for line in found)
    assert any("only the first" in why for why in stopped)


@pytest.mark.parametrize(("address", "href"), [
    ("?x=1", "/view/r/notes/n.md"),  # the note itself, not its folder
    ("/", "/files"), ("../", "/files"), ("..", "/files"),  # the top of the data folder, not the note's history
    ("./", "/file/notes"), ("/notes/", "/file/notes"),
])
def test_a_note_s_links_to_itself_and_to_folders_point_where_they_say(address: str, href: str) -> None:
    assert markdown.render(f"[to]({address})", "r", "notes/n.md") == f'<p><a href="{href}">to</a></p>\n'
    assert 'class="inert"' in markdown.render("[up](../../)", "r", "notes/n.md")


NEW_ROUTES = ["/search?q=a", "/search/names?q=a", "/files", "/secret?path=a.md", "/?path=nosuch",
              "/file/nosuch"]


def test_every_new_page_needs_the_ui_token_off_loopback(site: Site) -> None:  # noqa: F811
    """Off loopback (token mode): the search, the names as you type, the file list, the secret review and
    "did you mean" send a client without the token to the login form; the hold forms refuse it (401)."""
    access = Access("token", lambda: TOKEN)
    pages = Pages(site.pipeline.repo, access, lambda: site.state, perform(site.pipeline))
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages)
    server.start()
    try:
        for path in NEW_ROUTES:
            answer = fetch(server.port, path)
            assert answer.status == 303 and answer.headers["location"].startswith("/login?"), path
            assert "Bearer" not in answer.text
            allowed = fetch(server.port, path, headers={"Authorization": f"Bearer {TOKEN}",
                                                         "Sec-Fetch-Site": "same-origin"})
            assert allowed.status != 303, path
        for path in ("/holds/confirm", "/holds/put-back", "/secret"):
            body = f"csrf={access.csrf}&seen=x&path=a.md".encode()
            answer = fetch(server.port, path, "POST", body, {"Content-Type": "application/x-www-form-urlencoded"})
            assert answer.status == 401, path
    finally:
        server.stop()


@pytest.mark.parametrize("name", [b"polyglot.png", b"polyglot.html"])
def test_a_picture_with_markup_after_its_signature_is_only_ever_a_picture(site: Site, name: bytes) -> None:  # noqa: F811
    """A PNG signature followed by HTML (a polyglot), whatever its name: served as image/png under a CSP that
    runs nothing (sandbox, default-src 'none') and nosniff, so no browser reads it as a page."""
    content = b"\x89PNG\r\n\x1a\n" + b"<html><script>alert(1)</script></html>"
    blob = git_bytes(site.layout.git_dir, "hash-object", "-w", "--stdin", input=content)
    sha = commit_entries(site.layout.git_dir, [(b"100644", blob, name)])
    raw = site.get(f"/raw/{sha}/{name.decode()}")
    assert raw.status == 200 and raw.headers["content-type"] == "image/png" and raw.body == content
    policy = raw.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script" not in policy
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert "<script>alert" not in site.get(f"/view/{sha}/{name.decode()}").text


def test_on_or_before_a_day_and_a_time_shows_the_history_up_to_then(site: Site) -> None:  # noqa: F811
    """`2026-12-07 23:59` (and with a T, or a zone as git prints it) in "On or before": the timeline up to
    then, never "not a date" because it starts with a day."""
    today = datetime.date.today().isoformat()
    for until in (f"{today} 23:59", f"{today}T23:59", f"{today} 23:59:59 +0000"):
        page = site.get(f"/?until={urllib.parse.quote(until)}")
        assert page.status == 200 and site.revs["v1"][:10] in page.text, (until, page.text[-500:])


@pytest.mark.parametrize("until", ["1970-01-01", "1970-01-02 10:00", "1972-06-01"])
def test_on_or_before_a_day_before_1973_shows_nothing_and_says_where_the_history_starts(
        site: Site, until: str) -> None:  # noqa: F811
    """git reads `--until=@86399` (a bare number of fewer than nine digits) as now: such a day showed the
    whole history. It shows nothing, and says where the history starts."""
    page = site.get(f"/?until={urllib.parse.quote(until)}")
    assert page.status == 200 and site.revs["v1"][:10] not in page.text
    assert f"Nothing was saved on or before {until}: the history starts on" in page.text


def test_a_date_with_its_zone_after_a_space_is_read_as_git_prints_it(site: Site) -> None:  # noqa: F811
    repo = site.pipeline.repo
    assert revs.parse_date(repo, "2026-12-07 18:00 +0100") == revs.parse_date(repo, "2026-12-07T17:00:00Z")
    assert revs.parse_date(repo, "2026-12-07 18:00 -0130") == revs.parse_date(repo, "2026-12-07T19:30:00Z")
    assert revs.parse_date(repo, "2026-12-07 18:00 +0100") is not None
    assert revs.parse_date(repo, "10000-01-01") is None  # git reads some day of 1970 from it


@pytest.mark.parametrize("path", [
    "/files?in=..", "/files?in=%2e%2e/%2e%2e/etc", "/files?in=a%00b", "/file/%2e%2e/%2e%2e/etc/passwd",
    "/?path=..%2F..%2Fetc%2Fpasswd", "/search/names?q=a%00b", "/search?q=a%00b", "/search?q=" + "x" * 100_000,
    "/search?q=--output%3D%2Ftmp%2Fx&history=1", "/search?q=%3A(glob)*&history=1", "/search/names?q=%FF%FE",
    "/files?in=" + "d/" * 20_000,
])
def test_paths_and_texts_out_of_the_tree_or_of_any_size_are_answered_without_reading_outside(
        site: Site, path: str) -> None:  # noqa: F811
    answer = site.get(path)
    assert answer.status in (200, 404), (path[:80], answer.status, answer.text[:300])
    assert "root:" not in answer.text and "Traceback" not in answer.text


def test_a_file_kept_in_git_too_large_to_send_is_never_read_whole_for_raw(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A file kept in git itself (not LFS) larger than RAW_MAX: /raw answers 413 with the command that writes
    it to a file, instead of reading it whole into the daemon's memory (four at once could take gigabytes)."""
    monkeypatch.setattr(history, "RAW_MAX", 100_000)
    big = site.get(f"/raw/{site.revs['v4']}/big.txt")
    assert big.status == 413 and "too large to send from the pages" in big.text
    assert f"committer show big.txt --at {site.revs['v4'][:12]} -o FILE" in big.text
    small = site.get(f"/raw/{site.revs['v2']}/notes/a.md")
    assert small.status == 200 and small.body.startswith(b"first line")
