"""Input from others is data: commits pushed from elsewhere with hostile BM-Meta trailers, messages and
authors, file names that are not UTF-8, deeply nested or foreign webhook deliveries, login guessing and
cross-site previews. Nothing of it makes a page answer 500 or a handler log a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from committer.commit import trailer
from committer.serve import shown
from committer.serve.access import Access, Tries
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from committer.serve.webhook import WebhookReceiver, repository_key, signature
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, committer, git
from tests.serve.test_pages import TOKEN, Site, fetch, perform, post, site  # noqa: F401 (site: a fixture)

SECRET = "the webhook secret of the hostile-input tests"
HOSTILE_AUTHOR = b"<img src=x onerror=alert(1)> \xff\xfe <<script>@x>"
# Trailers another writer could push: each must leave every page a 200.
TRAILERS: list[bytes] = [
    b"BM-Meta: not json {",
    b'BM-Meta: ["x", 1]',
    b'BM-Meta: {"op":["x"],"added":"many","host":{"a":1},"batch":[1],"bmmeta":[1,2]}',
    b'BM-Meta: {"added": 1' + b"1" * 5000 + b', "deleted": 1e999, "modified": -5, "renamed": true}',
    b'BM-Meta: {"op": "' + b"x" * 100_000 + b'"}',
    b'BM-Meta: {"op": "<script>alert(1)</script>", "host": "\\u001b[31mred", "rev": "\\ud800"}',
    b"BM-Meta: " + b"[" * 100_000 + b"]" * 100_000,
    b'BM-Meta: {"op": {"nested": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
]


def git_bytes(git_dir: Path, *args: str | bytes, input: bytes | None = None,
              env: dict[bytes, bytes] | None = None) -> bytes:
    """git with byte arguments and environment (names and authors that are not UTF-8)."""
    full = {**os.environb, b"LC_ALL": b"C", b"GIT_CONFIG_NOSYSTEM": b"1", b"GIT_CONFIG_GLOBAL": os.devnull.encode(),
            b"GIT_AUTHOR_NAME": b"t", b"GIT_AUTHOR_EMAIL": b"t@t", b"GIT_COMMITTER_NAME": b"t",
            b"GIT_COMMITTER_EMAIL": b"t@t", **(env or {})}
    argv = [b"git", b"--git-dir=" + bytes(git_dir), *[a if isinstance(a, bytes) else a.encode() for a in args]]
    proc = subprocess.run(argv, input=input, capture_output=True, env=full, check=False)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return proc.stdout.strip()


def commit_file(git_dir: Path, name: bytes, content: bytes, message: bytes, author: bytes | None = None) -> str:
    """A commit on main that sets one file (any bytes in its name), made with plumbing; `author` is
    written into the commit object as it is (git's own tools would take the markup out)."""
    blob = git_bytes(git_dir, "hash-object", "-w", "--stdin", input=content)
    index = git_dir / "hostile-index"
    index_env = {b"GIT_INDEX_FILE": bytes(index)}
    git_bytes(git_dir, "read-tree", "main", env=index_env)
    git_bytes(git_dir, "update-index", "--index-info", input=b"100644 " + blob + b"\t" + name + b"\n", env=index_env)
    tree = git_bytes(git_dir, "write-tree", env=index_env)
    index.unlink()
    if author is None:
        sha = git_bytes(git_dir, "commit-tree", tree, "-p", "main", input=message).decode()
    else:
        parent = git_bytes(git_dir, "rev-parse", "main")
        body = (b"tree " + tree + b"\nparent " + parent + b"\nauthor " + author + b" 1700000000 +0000\n"
                b"committer t <t@t> 1700000000 +0000\n\n" + message)
        sha = git_bytes(git_dir, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=body).decode()
    git_bytes(git_dir, "update-ref", "refs/heads/main", sha)
    return sha


@pytest.fixture
def pushed(site: Site, tmp_path: Path) -> list[str]:  # noqa: F811
    """Commits made elsewhere (another writer's repository) with hostile trailers, messages and an author,
    then pushed into the daemon's repository as a pull would bring them."""
    other = tmp_path / "other.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(site.layout.git_dir), str(other)], check=True)
    shas = []
    for number, line in enumerate(TRAILERS):
        message = b"a subject \xff with <b>markup</b>\x1e and \x1f separators\n\nbody\n\n" + line + b"\n"
        author = HOSTILE_AUTHOR if number == 5 else None
        shas.append(commit_file(other, b"hostile.md", f"version {number}\n".encode(), message, author))
    git_bytes(other, "push", "-q", str(site.layout.git_dir).encode(), "main:main")
    return shas


def test_hostile_trailers_messages_and_authors_leave_every_page_a_200_with_the_text_escaped(
        site: Site, pushed: list[str]) -> None:  # noqa: F811
    """Non-JSON, arrays, wrong types, huge numbers, a 100 kB trailer, deep nesting, invalid UTF-8 and HTML in
    the message and the author: the timeline, each commit page and the file page answer 200, all as text."""
    pages = ["/", "/file/hostile.md", *[f"/commit/{sha}" for sha in pushed],
             *[f"/commit/{sha}?view=split" for sha in pushed]]
    with capture_logs() as logs:
        for path in pages:
            answer = site.get(path)
            assert answer.status == 200, (path, answer.status, answer.text[:300])
            assert "<script>alert" not in answer.text and "<img src=x" not in answer.text, path
            assert "<b>markup</b>" not in answer.text, path
    assert not [e for e in logs if e.get("log_level") == "error"], logs
    author_page = site.get(f"/commit/{pushed[5]}").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in author_page  # shown, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in author_page  # the trailer's op, as text
    assert "\x1b" not in author_page
    assert "a subject \ufffd with &lt;b&gt;markup&lt;/b&gt;" in author_page
    timeline = site.get("/").text
    assert all(sha[:10] in timeline for sha in pushed)


def test_committer_log_reads_hostile_trailers_without_a_traceback(site: Site, pushed: list[str]) -> None:  # noqa: F811
    """`committer log` shares the one trailer parser: every hostile commit listed, exit 0."""
    for extra in ([], ["--json"]):
        proc = committer("log", "-n", "20", *extra, env=site.layout.env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and all(sha[:12] in proc.stdout for sha in pushed)
        # nothing another writer put in a subject or a trailer reaches the terminal as a control character
        assert not any(c in proc.stdout for c in "\x1b\x1e\x1f\udcff"), proc.stdout[:2000]
        assert "op=['x']" not in proc.stdout and "host={" not in proc.stdout  # the cleaned trailer, as the pages


def test_the_trailer_parser_returns_none_or_clean_types_for_anything() -> None:
    """One parser: None for what is not a bounded JSON object, and only the types readers rely on."""
    for line in TRAILERS:
        meta = trailer.read("subject\n\n" + line.decode("utf-8", "replace"))
        assert meta is None or all(isinstance(meta.get(k, 0), int) for k in trailer.COUNTS)
        assert meta is None or all(isinstance(meta[k], str) for k in ("op", "host", "batch") if k in meta)
    assert trailer.read('s\n\nBM-Meta: {"op":["x"],"added":"many","deleted":2}') == {"deleted": 2}
    assert trailer.parse("s\n\nBM-Meta: " + "[" * 50 + "]" * 50) is None
    assert trailer.parse('s\n\nBM-Meta: {"a": "[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 25}
    assert trailer.read('s\n\nBM-Meta: {"op":"pull","added":3,"bmmeta":{"who":"agent"}}') == {
        "op": "pull", "added": 3, "bmmeta": {"who": "agent"}}


# -- names that are not UTF-8 -----------------------------------------------------------------------


def test_a_name_that_is_not_utf8_is_shown_escaped_and_its_links_work(site: Site) -> None:  # noqa: F811
    """`odd/bad\\xff.md` in the history: every page shows it as text, and the links built from it reach
    the same file (its bytes percent-encoded)."""
    sha = commit_file(site.layout.git_dir, b"odd/bad\xff<i>.md", b"odd content\n", b"an odd name\n")
    shown_name = "odd/bad\\xff&lt;i&gt;.md"
    link = "odd/bad%FF%3Ci%3E.md"
    timeline = site.get("/")
    assert timeline.status == 200 and shown_name in timeline.text and f'href="/file/{link}"' in timeline.text
    for path in (f"/file/{link}", f"/commit/{sha}", f"/view/{sha}/{link}", "/file/odd"):
        answer = site.get(path)
        assert answer.status == 200, (path, answer.status, answer.text[:300])
        assert shown_name in answer.text, path
    assert "odd content" in site.get(f"/view/{sha}/{link}").text
    raw = site.get(f"/raw/{sha}/{link}")
    assert raw.status == 200 and raw.body == b"odd content\n"
    assert "bad%FF%3Ci%3E.md" in raw.headers["content-disposition"]
    preview = site.get(f"/restore?path={link}&rev={sha}", Sec_Fetch_Site="same-origin")
    assert preview.status != 500 or "Traceback" not in preview.text
    assert 'value="odd%2Fbad%FF%3Ci%3E.md"' in preview.text or preview.status != 200  # the form sends the bytes


@pytest.mark.parametrize(("name", "shown_name", "link"), [
    (b"ctl/tab\there.md", "ctl/tab\there.md", "ctl/tab%09here.md"),
    (b"ctl/esc\x1b[31m.md", "ctl/esc\\x1b[31m.md", "ctl/esc%1B%5B31m.md"),
    (b"ctl/\x01start.md", "ctl/\\x01start.md", "ctl/%01start.md"),
    ("ctl/\u202eevil.md".encode(), "ctl/\\u202eevil.md", "ctl/%E2%80%AEevil.md"),
])
def test_a_name_with_control_characters_has_its_pages_and_shows_them_escaped(
        site: Site, name: bytes, shown_name: str, link: str) -> None:  # noqa: F811
    """A file name may hold any byte but NUL and `/`: its history, view and download pages answer, and
    what could change how the page reads (an escape, a control character, a direction override) is
    shown as \\xNN or \\uNNNN."""
    sha = commit_file(site.layout.git_dir, name, b"content\n", b"a control name\n")
    for path in (f"/file/{link}", f"/view/{sha}/{link}", f"/commit/{sha}"):
        answer = site.get(path)
        assert answer.status == 200, (path, answer.status, answer.text[:300])
        assert shown_name in answer.text, path
        assert not any(c in answer.text for c in "\x01\x1b\u202e"), path
    assert site.get(f"/raw/{sha}/{link}").body == b"content\n"


# -- webhook deliveries -------------------------------------------------------------------------------


@pytest.fixture
def hook(layout: Layout) -> Iterator[tuple[int, list[str | None]]]:
    pulls: list[str | None] = []
    receiver = WebhookReceiver("main", lambda: SECRET, pulls.append, lambda _head: None,
                               remote="https://github.com/Acme/Notes.git")

    def webhook(headers: Any, body: bytes) -> tuple[int, Any]:
        reply = receiver.handle(headers, body)
        return reply.status, reply.body

    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        webhook=webhook)
    server.start()
    yield server.port, pulls
    server.stop()


def deliver(port: int, body: bytes, delivery: str) -> tuple[int, dict[str, Any]]:
    answer = fetch(port, "/webhook", "POST", body, {
        "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature(SECRET, body)})
    return answer.status, json.loads(answer.body)


def test_a_deeply_nested_signed_body_is_a_400_without_a_traceback(hook: tuple[int, list[str | None]]) -> None:
    """200,000 nested arrays, correctly signed: a clear 400, nothing logged as an error, no pull."""
    port, pulls = hook
    with capture_logs() as logs:
        for number, body in enumerate((b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                       b"[" * 200_000)):
            status, answer = deliver(port, body, f"deep-{number}")
            assert status == 400 and "nested" in answer["error"]
    assert not [e for e in logs if e.get("log_level") == "error"] and pulls == []
    assert any(e.get("event") == "webhook_refused" for e in logs)


@pytest.mark.parametrize("repository, acted", [
    ({"full_name": "acme/notes", "clone_url": "https://github.com/acme/notes.git"}, True),
    ({"full_name": "ACME/Notes", "ssh_url": "git@github.com:ACME/Notes.git"}, True),
    ({"html_url": "https://github.com/acme/notes/"}, True),
    ({"full_name": "evil/notes", "clone_url": "https://github.com/evil/notes.git"}, False),
    ({"full_name": "acme/notes-fork", "html_url": "https://github.com/acme/notes-fork"}, False),
    ({"clone_url": "https://gitlab.example/acme/other.git"}, False),
])
def test_a_delivery_for_another_repository_is_ignored_and_logged(
        hook: tuple[int, list[str | None]], repository: dict[str, str], acted: bool) -> None:
    """Compared with the configured remote case-insensitively, without `.git`: another repository's
    push is answered 202 `ignored` with a reason, logged, and queues no pull."""
    port, pulls = hook
    body = json.dumps({"ref": "refs/heads/main", "after": "b" * 40, "repository": repository}).encode()
    with capture_logs() as logs:
        status, answer = deliver(port, body, "repo-1")
    if acted:
        assert status == 202 and answer["action"] == "pull_queued" and pulls == ["b" * 40]
    else:
        assert status == 202 and answer["action"] == "ignored" and "not this daemon's remote" in answer["reason"]
        assert pulls == [] and any(e.get("reason", "").startswith("the delivery is for another") for e in logs)


def test_repository_keys_are_the_same_for_every_spelling_of_one_remote() -> None:
    keys = {repository_key(u) for u in ("https://github.com/Acme/Notes.git", "git@github.com:acme/notes.git",
                                        "ssh://git@github.com/acme/notes", "https://x:y@github.com/acme/notes/")}
    assert keys == {"github.com/acme/notes"}


# -- login, previews, banner, health, dates ------------------------------------------------------------


def test_login_allows_five_tries_a_minute_then_429_with_retry_after(layout: Layout,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = make_pipeline(layout)
    write(layout, "a.md", "hello")
    pipeline.commit(["a.md"])
    access = Access.decide("0.0.0.0", lambda: TOKEN)
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=Pages(pipeline.repo, access, dict, perform(pipeline)))
    server.start()
    try:
        statuses = [post(server.port, "/login", {"token": f"guess-{n}", "csrf": access.login_csrf}).status
                    for n in range(5)]
        assert statuses == [401] * 5
        refused = post(server.port, "/login", {"token": TOKEN, "csrf": access.login_csrf})
        assert refused.status == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert "set-cookie" not in refused.headers  # even the right token waits
    finally:
        server.stop()


def test_a_restore_preview_is_computed_only_for_same_origin_requests(site: Site) -> None:  # noqa: F811
    """A cross-site `<img src>` (or anything that cannot show it came from these pages) gets a 403 and
    no dry run; the pages' own link, the address bar and a same-origin Referer get the preview."""
    path = f"/restore?path=notes/b.md&rev={site.revs['v1']}"
    for headers in ({"Sec_Fetch_Site": "cross-site"}, {"Sec_Fetch_Site": "same-site"}, {},
                    {"Referer": "http://evil.example/page"}, {"Origin": "http://evil.example"}):
        answer = site.get(path, **headers)
        assert answer.status == 403, headers
        assert "would change" in answer.text and "<strong>delete</strong>" not in answer.text
    for headers in ({"Sec_Fetch_Site": "same-origin"}, {"Sec_Fetch_Site": "none"},
                    {"Referer": f"http://127.0.0.1:{site.port}/file/notes/b.md"}):
        answer = site.get(path, **headers)
        assert answer.status == 200 and "<strong>delete</strong> <code>notes/b.md</code>" in answer.text, headers


def test_the_banner_never_says_everything_is_backed_up_while_files_are_held(site: Site) -> None:  # noqa: F811
    site.state["push"]["pending_commits"] = 0
    assert "everything is backed up" in site.get("/").text
    site.state["held_files"] = [{"path": f"keys/k{n}.pem", "reason": "private key"} for n in range(5)]
    text = site.get("/").text
    assert "everything is backed up" not in text
    assert '<a href="#held-files"><strong>5 files kept out</strong></a>' in text and 'id="held-files"' in text
    assert all(f"keys/k{n}.pem" in text for n in range(5))
    site.state["held_files"] = []
    site.state["held"] = {"count": 40, "reason": "more than 30 deletions"}
    text = site.get("/").text
    assert "everything is backed up" not in text and "deletions are on hold" in text


def test_healthz_is_503_only_when_not_alive_and_passes_degraded_through(layout: Layout) -> None:
    report: dict[str, Any] = {"healthy": True, "degraded": True, "unwritable_paths": [{"path": "x" * 300}]}
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: report, lambda: True)
    server.start()
    try:
        answer = fetch(server.port, "/healthz")
        assert answer.status == 200 and json.loads(answer.body)["status"] == "degraded"
        assert json.loads(answer.body)["unwritable_paths"] == report["unwritable_paths"]
        report.clear()
        report.update({"healthy": True})
        assert json.loads(fetch(server.port, "/healthz").body)["status"] == "ok"
        report.update({"healthy": False, "watcher": "down"})
        answer = fetch(server.port, "/healthz")
        assert answer.status == 503 and json.loads(answer.body)["status"] == "down"
    finally:
        server.stop()


def test_the_date_jump_says_when_a_date_is_outside_the_history(site: Site) -> None:  # noqa: F811
    before = site.get("/?until=2000-01-01")
    assert before.status == 200 and "Nothing was saved on or before 2000-01-01: the history starts on" in before.text
    after = site.get("/?until=2999-01-01")
    assert after.status == 200 and "2999-01-01 is after the newest change" in after.text
    assert site.revs["v4"][:10] in after.text
    wrong = site.get("/?until=2026-02-31")
    assert wrong.status == 404 and "is not a date such as" in wrong.text
    assert git(site.layout.git_dir, "rev-parse", "main").strip()


def test_login_tries_are_counted_per_client_and_come_back_after_the_window() -> None:
    """Pure: five tries per client in any minute; another client is not affected; memory is bounded."""
    now = [1000.0]
    tries = Tries(most=5, window=60.0, clock=lambda: now[0], clients=3)
    assert [tries.wait("a") for _ in range(5)] == [0.0] * 5
    assert tries.wait("a") == 60.0 and tries.wait("b") == 0.0
    now[0] += 30
    assert tries.wait("a") == 30.0
    now[0] += 30.5
    assert tries.wait("a") == 0.0
    for client in ("c", "d", "e", "f"):
        tries.wait(client)
    assert len(tries._seen) <= 3


def test_names_round_trip_through_urls_and_show_their_odd_bytes() -> None:
    """Pure: any byte name survives a URL and back; bytes that are not UTF-8 show as \\xNN."""
    for raw in (b"bad\xff\xfename.md", b"caf\xc3\xa9 100%.md", b"a/b c?d#e&f.md", b"\xed\xa0\x80.md"):
        name = os.fsdecode(raw)
        assert shown.from_url(shown.url_path(name)) == name and shown.from_url(shown.url_part(name)) == name
    assert shown.readable(os.fsdecode(b"bad\xff.md")) == "bad\\xff.md"
    assert shown.readable("café.md") == "café.md"
    assert shown.readable("\ud800") == "\\ud800"
