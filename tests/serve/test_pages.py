"""The history pages over real HTTP, in process, on a real repository: what they show, and every way in
that should be refused (paths out of the tree, things that are not revisions, markup in names and
contents, cross-site posts, foreign Host names, missing tokens, slow clients)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from committer.commit.committer import Committer
from committer.core.secret import ui_token as read_token
from committer.git import lfs
from committer.ops.asking import Answer as Answer_
from committer.ops.asking import Request
from committer.ops.requests import perform as perform_request
from committer.serve import diffs, history, wording
from committer.serve.access import COOKIE, Access, is_loopback
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from committer.sync.pullstate import PullRecord
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, git

TOKEN = "a-long-enough-ui-token-0123456789"
IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def fetch(port: int, path: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> Answer:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def post(port: int, path: str, fields: dict[str, str], **headers: str) -> Answer:
    body = urllib.parse.urlencode(fields).encode()
    sent = {"Content-Type": "application/x-www-form-urlencoded", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return fetch(port, path, "POST", body, sent)


@dataclass
class Site:
    port: int
    pipeline: Committer
    layout: Layout
    access: Access
    revs: dict[str, str]
    state: dict[str, Any]

    def get(self, path: str, **headers: str) -> Answer:
        return fetch(self.port, path, headers={k.replace("_", "-"): v for k, v in headers.items()})


def perform(pipeline: Committer) -> Callable[[Request], Answer_]:
    """What the daemon's main loop does, done here: the same ops.perform, errors as exceptions."""

    def request(asked: Request) -> Answer_:
        answer = perform_request(pipeline, PullRecord(), asked)
        if answer.error is not None:
            from committer.core.errors import CommitterError

            raise CommitterError(answer.error)
        return answer

    return request


def build_history(layout: Layout, pipeline: Committer) -> dict[str, str]:
    """v1: notes/a.md, page.html with markup; v2: a.md edited; v3: a.md moved to notes/b.md; v4: a binary
    file and a large text file; a snapshot tag on v2."""
    write(layout, "notes/a.md", "first line\nsecond line\n")
    write(layout, "page.html", "<script>alert('x')</script><b>bold</b>\n")
    write(layout, "<img src=x onerror=alert(1)>.md", "odd name\n")
    revs = {"v1": str(pipeline.commit([""]).sha)}
    write(layout, "notes/a.md", "first line\nsecond line changed here\nthird line\n")
    revs["v2"] = str(pipeline.commit(["notes/a.md"]).sha)
    git(layout.git_dir, "tag", "-a", "-m", "before the move", "snapshot-1", revs["v2"])
    (layout.data / "notes" / "a.md").rename(layout.data / "notes" / "b.md")
    revs["v3"] = str(pipeline.commit(["notes/a.md", "notes/b.md"]).sha)
    write(layout, "pic.bin", bytes(range(256)) * 4)
    write(layout, "big.txt", "x" * 80 + "\n" * 1 + ("line\n" * 250_000))
    revs["v4"] = str(pipeline.commit(["pic.bin", "big.txt"]).sha)
    return revs


@contextlib.contextmanager
def serving(pages: Pages) -> Iterator[int]:
    """The pages served by the daemon's own HTTP server on a loopback port (the port), stopped after."""
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture
def site(layout: Layout) -> Iterator[Site]:
    pipeline = make_pipeline(layout)
    revs = build_history(layout, pipeline)
    access = Access("open")
    state: dict[str, Any] = {"push": {"remote": "https://github.com/o/r.git", "pending_commits": 2,
                                      "last_push_at": "2026-11-30T10:00:00Z", "last_error": None}}
    pages = Pages(pipeline.repo, access, lambda: state, perform(pipeline))
    with serving(pages) as port:
        yield Site(port, pipeline, layout, access, revs, state)


def test_the_timeline_shows_commits_files_marks_tags_and_the_push_banner(site: Site) -> None:
    page = site.get("/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert text.index(site.revs["v4"][:10]) < text.index(site.revs["v1"][:10])  # newest first
    assert "Today" in text
    assert 'class="renamed"' in text and "notes/a.md</a> → <a href=\"/file/notes/b.md\">notes/b.md</a>" in text
    assert "snapshot-1" in text
    assert "2 changes waiting to be sent" in text and "github.com/o/r.git" in text
    assert "<script>alert" not in text and "&lt;img src=x onerror=alert(1)&gt;.md" in text


def test_the_timeline_pages_filters_by_path_and_jumps_to_a_date(site: Site) -> None:
    pipeline, layout = site.pipeline, site.layout
    for number in range(55):
        write(layout, "many.md", f"version {number}\n")
        pipeline.commit(["many.md"])
    first = site.get("/").text
    assert 'rel="next"' in first and site.revs["v1"][:10] not in first
    older = site.get("/?skip=50").text
    assert site.revs["v1"][:10] in older and "Newer" in older
    only = site.get("/?path=notes").text
    assert site.revs["v2"][:10] in only and site.revs["v4"][:10] not in only
    assert site.get("/?until=2000-01-01").text.count('class="commit') == 0
    assert site.get("/?until=2999-01-01").status == 200
    assert site.get("/?until=yesterday%3Brm").status == 404


def test_a_file_page_lists_every_revision_across_a_rename(site: Site) -> None:
    text = site.get("/file/notes/b.md").text
    for rev in ("v1", "v2", "v3"):
        assert f"/commit/{site.revs[rev]}" in text
    assert "renamed from <code>notes/a.md</code>" in text
    assert f"/view/{site.revs['v1']}/notes/a.md" in text  # the old name at the old revision
    # Restoring a revision from before the move brings the file back under the name it had then.
    assert f"/restore?path=notes%2Fa.md&amp;rev={site.revs['v1']}" in text
    assert "Restore this version" in text
    folder = site.get("/file/notes").text
    assert "Restore this version of the folder" in folder


def test_a_commit_page_shows_the_trailer_and_word_level_changes(site: Site) -> None:
    text = site.get(f"/commit/{site.revs['v2']}").text
    assert "<ins>changed here</ins>" in text or "<ins> changed here</ins>" in text
    assert "third line" in text and "Batch" in text and "First change seen" in text
    split = site.get(f"/commit/{site.revs['v2']}?view=split").text
    table = split[split.index('class="split"'):]
    assert '<td class="del">second line</td><td class="no">2</td><td class="add">second line<ins> changed here</ins>' \
        in table.replace("\n", "").replace("  ", "") or "<ins>" in table
    big = site.get(f"/commit/{site.revs['v4']}").text
    assert "too large to show here" in big and "binary file" in big


def test_file_content_is_text_never_markup(site: Site) -> None:
    view = site.get(f"/view/{site.revs['v1']}/page.html")
    assert view.status == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in view.text
    assert "<script>alert" not in view.text
    raw = site.get(f"/raw/{site.revs['v1']}/page.html")
    assert raw.status == 200 and raw.body.startswith(b"<script>")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in raw.headers["content-security-policy"]
    assert raw.headers["x-content-type-options"] == "nosniff"
    binary = site.get(f"/view/{site.revs['v4']}/pic.bin").text
    assert "not text" in binary
    assert site.get(f"/raw/{site.revs['v4']}/pic.bin").body == bytes(range(256)) * 4


def test_an_lfs_file_is_downloaded_from_the_local_store(site: Site) -> None:
    """A pointer blob stands for its object in <git_dir>/lfs/objects; without the object, a clear 404."""
    content = b"\x89PNG large" * 1000
    oid = hashlib.sha256(content).hexdigest()
    store = lfs.object_path(site.layout.git_dir, oid)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(content)
    git_dir = site.layout.git_dir

    def plumbing(*args: str, data: bytes) -> str:
        return subprocess.run(["git", f"--git-dir={git_dir}", *args], input=data, capture_output=True, check=True,
                              env={**os.environ, **IDENTITY}).stdout.decode().strip()

    blob = plumbing("hash-object", "-w", "--stdin", data=lfs.pointer(oid, len(content)))
    tree = plumbing("mktree", data=f"100644 blob {blob}\tphoto.png\n".encode())
    commit = plumbing("commit-tree", tree, "-p", str(site.pipeline.head), "-m", "an LFS file", data=b"")
    raw = site.get(f"/raw/{commit}/photo.png")
    assert raw.status == 200 and raw.body == content
    view = site.get(f"/view/{commit}/photo.png").text
    assert "kept in LFS" in view and "10.0 KB" in view
    store.unlink()
    assert site.get(f"/raw/{commit}/photo.png").status == 404


@pytest.mark.parametrize("path", [
    "/file/%2e%2e/%2e%2e/etc/passwd", "/file/notes/../../etc/passwd", "/file/a%00b", "/view/HEAD/..%2fsecret",
    "/commit/--output=%2ftmp%2fx", "/commit/not-a-sha", "/commit/0123456789abcdef0123456789abcdef01234567",
    "/view/--help/page.html", "/raw/HEAD~1/page.html", "/raw/main/nothing-here.md", "/file/no/such/file.md",
    "/?path=%2e%2e", "/restore?path=..&rev=main", "/commit/2099-01-01", "/view/2099-01-01/page.html",
    "/commit/main@%7B1000%20years%20ago%7D",
])
def test_bad_paths_and_revisions_are_404s_not_tracebacks(site: Site, path: str) -> None:
    answer = site.get(path)
    assert answer.status == 404, (path, answer.status, answer.text[:200])
    assert "Traceback" not in answer.text


def test_a_commit_message_with_markup_is_escaped(site: Site) -> None:
    write(site.layout, "m.md", "x")
    sha = site.pipeline.commit(["m.md"]).sha
    commit = git(site.layout.git_dir, "commit-tree", f"{sha}^{{tree}}", "-p", str(sha), "-m",
                 "<script>alert(1)</script>\n\nBM-Meta: {\"v\":1,\"host\":\"<b>h</b>\",\"op\":\"<i>x</i>\"}").strip()
    git(site.layout.git_dir, "update-ref", "refs/heads/main", commit)
    for page in (site.get("/").text, site.get(f"/commit/{commit}").text):
        assert "<script>alert(1)" not in page and "<b>h</b>" not in page and "<i>x</i>" not in page
        assert "&lt;b&gt;h&lt;/b&gt;" in page


def test_restore_needs_the_csrf_token_and_the_same_origin(site: Site) -> None:
    target = site.layout.data / "notes" / "b.md"
    before = target.read_text()
    head = site.pipeline.head
    form = {"path": "notes/b.md", "rev": site.revs["v2"]}
    assert post(site.port, "/restore", form).status == 403  # no token
    as_json = fetch(site.port, "/restore", "POST", json.dumps({**form, "csrf": site.access.csrf}).encode(),
                    {"Content-Type": "application/json"})
    assert as_json.status == 403  # a body that is not the page's form carries no token
    assert post(site.port, "/restore", {**form, "csrf": "wrong"}).status == 403
    refused = post(site.port, "/restore", {**form, "csrf": site.access.csrf}, Origin="http://evil.example")
    assert refused.status == 403
    assert post(site.port, "/restore", {**form, "csrf": site.access.csrf}, Origin="null").status == 403
    assert post(site.port, "/restore", {**form, "csrf": site.access.csrf}, Sec_Fetch_Site="cross-site").status == 403
    assert target.read_text() == before and site.pipeline.head == head
    page = site.get(f"/restore?path=notes/b.md&rev={site.revs['v1']}", Sec_Fetch_Site="same-origin").text
    assert "<strong>delete</strong> <code>notes/b.md</code>" in page  # it did not exist at v1
    page = site.get(f"/restore?path=notes&rev={site.revs['v2']}", Sec_Fetch_Site="same-origin").text
    assert "<strong>delete</strong> <code>notes/b.md</code>" in page and "put back</strong> <code>notes/a.md" in page
    assert site.pipeline.head == head  # the confirmation page changed nothing
    done = post(site.port, "/restore", {"path": "notes", "rev": site.revs["v2"], "csrf": site.access.csrf},
                Origin=f"http://127.0.0.1:{site.port}")
    assert done.status == 303 and done.headers["location"].startswith(f"/commit/{site.pipeline.head}")
    assert (site.layout.data / "notes" / "a.md").read_text().startswith("first line\nsecond line changed")
    assert not target.exists()
    meta = json.loads(git(site.layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))
    assert meta["op"] == "restore" and meta["source"] == site.revs["v2"]
    shown = site.get(done.headers["location"]).text
    assert "Restored <code>notes</code>" in shown


def test_a_form_post_that_never_finishes_is_dropped(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from committer.serve import forms

    monkeypatch.setattr(forms, "FORM_SECONDS", 0.3)
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as conn:
        conn.sendall(b"POST /restore HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
                     b"\r\nContent-Length: 500\r\n\r\npath=x")
        assert site.get("/healthz").status == 200  # others are served meanwhile
        assert conn.recv(65536).startswith(b"HTTP/1.1 400")
    huge = fetch(site.port, "/restore", "POST", b"a=" + b"x" * 100_000,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status == 400


def test_a_foreign_host_name_is_refused_on_loopback(site: Site) -> None:
    """DNS rebinding: a page of another site whose name now points at 127.0.0.1 cannot read the pages."""
    assert site.get("/", Host="evil.example").status == 403
    assert site.get("/", Host=f"localhost:{site.port}").status == 200
    assert site.get("/healthz", Host="evil.example").status == 200  # the endpoints keep their own rules


def test_security_headers_on_pages(site: Site) -> None:
    for path in ("/", "/file/notes/b.md", f"/commit/{site.revs['v2']}", "/static/style.css", "/nope"):
        headers = site.get(path).headers
        assert "default-src 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"


# -- access off loopback ----------------------------------------------------------------------------


@pytest.fixture
def guarded(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Access, Layout]]:
    pipeline = make_pipeline(layout)
    write(layout, "a.md", "hello")
    pipeline.commit(["a.md"])
    monkeypatch.setenv("COMMITTER_UI_TOKEN", TOKEN)
    access = Access.decide("0.0.0.0", lambda: read_token(None))
    pages = Pages(pipeline.repo, access, dict, perform(pipeline))
    # Bound to loopback for the test; the access rule is the one of a 0.0.0.0 bind.
    with serving(pages) as port:
        yield port, access, layout


def test_off_loopback_every_page_needs_the_token(guarded: tuple[int, Access, Layout]) -> None:
    port, access, _ = guarded
    assert access.mode == "token"
    for path in ("/", "/file/a.md", "/commit/main", "/view/main/a.md", "/raw/main/a.md", "/restore?path=a.md&rev=main"):
        answer = fetch(port, path)
        assert answer.status == 303 and answer.headers["location"].startswith("/login?next="), path
        assert b"hello" not in answer.body
    assert fetch(port, "/", headers={"Authorization": "Bearer wrong"}).status == 303
    assert fetch(port, "/", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
    assert fetch(port, "/raw/main/a.md", headers={"Authorization": f"Bearer {TOKEN}"}).body == b"hello"
    assert fetch(port, "/healthz").status == 200  # its own rules


def test_the_login_form_sets_a_strict_http_only_cookie(guarded: tuple[int, Access, Layout]) -> None:
    port, access, _ = guarded
    form = fetch(port, "/login?next=/file/a.md")
    assert form.status == 200 and access.csrf not in form.text  # the pages' token is not given to strangers
    wrong = post(port, "/login", {"token": "nope", "next": "/", "csrf": access.login_csrf})
    assert wrong.status == 401 and "set-cookie" not in wrong.headers
    assert post(port, "/login", {"token": TOKEN, "next": "/"}).status == 403  # no form token
    ok = post(port, "/login", {"token": TOKEN, "next": "/file/a.md", "csrf": access.login_csrf})
    assert ok.status == 303 and ok.headers["location"] == "/file/a.md"
    cookie = ok.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and TOKEN not in cookie
    value = cookie.split(";")[0]
    assert fetch(port, "/file/a.md", headers={"Cookie": value}).status == 200
    assert fetch(port, "/", headers={"Cookie": f"{COOKIE}=forged"}).status == 303
    away = post(port, "/login", {"token": TOKEN, "next": "//evil.example/x", "csrf": access.login_csrf})
    assert away.headers["location"] == "/"


def test_no_token_means_no_pages_off_loopback(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMITTER_UI_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        access = Access.decide("0.0.0.0", lambda: read_token(None))
    assert access.mode == "off"
    assert any(e["event"] == "pages_off" and "ui_token" in e["action"] for e in logs)
    assert not access.authorized({"authorization": "Bearer anything"}, {})


def test_the_token_comes_from_env_file_or_credential(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text(f"{TOKEN}\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ui_token").write_text("from-credential-0123456789")
    assert read_token(file, {"COMMITTER_UI_TOKEN": "from-env"}) == "from-env"
    assert read_token(file, {}) == TOKEN
    assert read_token(None, {"CREDENTIALS_DIRECTORY": str(creds)}) == "from-credential-0123456789"
    assert read_token(None, {}) is None


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                       ("localhost", True), ("0.0.0.0", False), ("::", False),
                                       ("192.168.1.5", False), ("example.com", False)])
def test_which_binds_are_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_word_highlights_pair_removed_and_added_lines() -> None:
    rows = diffs.parse_hunks(["@@ -1,2 +1,2 @@", " same", "-the quick fox", "+the slow fox"])
    lines = diffs.highlight(rows)
    assert [line.kind for line in lines] == ["hunk", "context", "del", "add"]
    assert [s.text for s in lines[2].segments if s.changed] == ["quick"]
    assert [s.text for s in lines[3].segments if s.changed] == ["slow"]
    assert wording.relative(int(time.time()) - 7200, time.time()) == "2 hours ago"


def test_the_commit_graph_the_maintenance_writes_keeps_the_file_pages_right(site: Site) -> None:
    """The daemon's maintenance adds changed-path filters (a commit-graph); the pages read the same history."""
    from committer.daemon.maintenance import write_commit_graph

    before = site.get("/file/notes/b.md").text
    assert write_commit_graph(site.pipeline.repo)
    assert (site.layout.git_dir / "objects" / "info" / "commit-graphs").is_dir()
    after = site.get("/file/notes/b.md").text
    assert [line for line in after.splitlines() if "/commit/" in line] == \
        [line for line in before.splitlines() if "/commit/" in line]
    assert write_commit_graph(site.pipeline.repo)  # again: only what is new


def test_a_commit_of_many_files_draws_the_first_diffs_and_lists_the_rest(site: Site) -> None:
    for number in range(history.DIFFS_MAX + 10):
        write(site.layout, f"bulk/{number:04d}.md", f"file {number}\n")
    sha = site.pipeline.commit(["bulk"]).sha
    page = site.get(f"/commit/{sha}")
    assert page.status == 200
    assert f"This change touched {history.DIFFS_MAX + 10} files" in page.text
    assert page.text.count('<section class="diff') == history.DIFFS_MAX
    assert "bulk/0209.md" in page.text
    timeline = site.get("/").text
    assert f'{history.DIFFS_MAX + 10} files</a>:' in timeline  # over LISTED_MAX: counts and a link
    assert site.get("/view/main/").status == 404
