"""The hold forms as a careless or hostile client sends them: a form that does not say which hold or which
content it was shown (it would deal with whatever is held or in the file now, never seen), a held pull named
by its remote commit, and a put-back that must never write through a symbolic link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from committer.core.errors import CommitterError
from committer.ops.kinds import _changed
from committer.ops.requests import perform as perform_request
from committer.ops.state import parts_state
from committer.serve.access import Access
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from committer.sync import pull
from committer.sync.pullstate import PullRecord
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, git
from tests.serve.test_holds_http import TOKEN, Site, delete_five, site, tree  # noqa: F401 (site: a fixture)
from tests.serve.test_pages import fetch, post
from tests.sync.test_pull import Clone


def test_a_hold_form_that_does_not_say_which_hold_it_was_shown_changes_nothing(site: Site) -> None:  # noqa: F811
    """`seen` empty or missing, with the right CSRF token: refused (400), the deletions still held, nothing
    written or committed, from either button."""
    delete_five(site)
    head, hold = site.pipeline.head, site.pipeline.holds.hold
    for path in ("/holds/confirm", "/holds/put-back"):
        for fields in ({"csrf": site.access.csrf}, {"csrf": site.access.csrf, "seen": ""}):
            answer = site.post(path, fields, Origin=site.origin)
            assert answer.status == 400 and "reload the page" in answer.text, (path, fields, answer.status)
    assert site.pipeline.head == head and site.pipeline.holds.hold == hold
    assert "kb/n0.md" in tree(site) and not (site.layout.data / "kb/n0.md").exists()


def test_the_banner_names_a_held_pull_by_its_remote_commit_and_only_that_one_is_confirmed(
        site: Site) -> None:  # noqa: F811
    """A pull held for deleting too much has no local hold key: the form carries the remote commit it showed,
    and a page shown for another remote commit (or for no held pull) deals with nothing."""
    remote = "a" * 40
    record = PullRecord({"held": {"reason": "pull_delete", "paths": ["kb/n0.md"], "count": 9,
                                  "since": "2026-12-01T10:00:00Z", "remote_head": remote}})
    assert not _changed(site.pipeline, remote, record)
    assert _changed(site.pipeline, "b" * 40, record)
    assert _changed(site.pipeline, remote, PullRecord())
    site.push["pending_commits"] = 0
    from committer.serve import pages as pages_module

    text = pages_module.ENV.get_template("_holds.html").render(
        banner=pages_module.shown.banner({"held": record.held(), "push": site.push}, 0.0), csrf="t")
    assert f'name="seen" value="{remote}"' in text


def test_it_is_not_a_secret_without_the_reviewed_content_named_commits_nothing(site: Site) -> None:  # noqa: F811
    """A POST to /secret with the right CSRF token but no `sha` (the content the review showed): refused, the
    file is not committed, whatever it holds now."""
    write(site.layout, "notes/gh.md", f"example:\n{TOKEN}\n")
    site.pipeline.commit(["notes/gh.md"])
    head = site.pipeline.head
    for fields in ({"path": "notes%2Fgh.md"}, {"path": "notes%2Fgh.md", "sha": ""}):
        answer = site.post("/secret", {**fields, "csrf": site.access.csrf}, Origin=site.origin)
        assert answer.status == 400 and TOKEN not in answer.text, fields
    assert site.pipeline.head == head and "notes/gh.md" not in tree(site)


def test_put_back_never_writes_through_a_link_nor_over_a_folder(site: Site, tmp_path: Path) -> None:  # noqa: F811
    """Held files replaced meanwhile by a dangling symbolic link to outside the data directory, or by a
    folder: kept as they are and named; the others are written back; nothing appears outside."""
    delete_five(site)
    outside = tmp_path / "outside"
    outside.mkdir()
    (site.layout.data / "kb/n0.md").symlink_to(outside / "planted.md")
    (site.layout.data / "kb/n1.md").mkdir()
    seen = site.pipeline.holds.hold.status()["key"]  # type: ignore[union-attr]
    done = site.post("/holds/put-back", {"seen": seen, "csrf": site.access.csrf}, Origin=site.origin)
    assert done.status == 200 and "3 files written back" in done.text, done.text[-800:]
    assert "<strong>kept</strong> <code>kb/n0.md</code>" in done.text and "<code>kb/n1.md</code>" in done.text
    assert list(outside.iterdir()) == [] and (site.layout.data / "kb/n0.md").is_symlink()
    assert (site.layout.data / "kb/n1.md").is_dir() and (site.layout.data / "kb/n2.md").read_text() == "note 2\n"


def test_put_back_never_writes_through_a_folder_that_became_a_link(site: Site, tmp_path: Path) -> None:  # noqa: F811
    """The held files' folder replaced by a symbolic link to a folder outside the data directory: nothing
    is written there, every file is named as kept with the link."""
    delete_five(site)
    outside = tmp_path / "outside"
    outside.mkdir()
    (site.layout.data / "kb").rename(tmp_path / "kb-moved")
    (site.layout.data / "kb").symlink_to(outside)
    seen = site.pipeline.holds.hold.status()["key"]  # type: ignore[union-attr]
    done = site.post("/holds/put-back", {"seen": seen, "csrf": site.access.csrf}, Origin=site.origin)
    assert done.status == 200 and "0 files written back" in done.text, done.text[-800:]
    assert done.text.count("is a symbolic link now") == 5
    assert list(outside.iterdir()) == []


def test_it_is_not_a_secret_for_a_file_renamed_or_deleted_since_the_review_commits_nothing(
        site: Site) -> None:  # noqa: F811
    """The reviewed file moved away (or its name given with `..`) before the click: refused with a line
    naming it, nothing committed, nothing read outside."""
    write(site.layout, "notes/gh.md", f"example:\n{TOKEN}\n")
    site.pipeline.commit(["notes/gh.md"])
    review = site.get("/secret?path=notes/gh.md", Sec_Fetch_Site="same-origin").text
    sha = review.split('name="sha" value="')[1].split('"')[0]
    (site.layout.data / "notes/gh.md").rename(site.layout.data / "notes/moved.md")
    head = site.pipeline.head
    gone = site.post("/secret", {"path": "notes%2Fgh.md", "sha": sha, "csrf": site.access.csrf}, Origin=site.origin)
    assert gone.status == 409 and "notes/gh.md is not in the data directory" in gone.text
    outside = site.post("/secret", {"path": "notes%2F..%2F..%2Fetc%2Fpasswd", "sha": sha, "csrf": site.access.csrf},
                        Origin=site.origin)
    assert outside.status == 404 and "root:" not in outside.text
    assert site.pipeline.head == head and TOKEN not in gone.text + outside.text


def test_a_held_pull_is_confirmed_from_the_page_by_its_remote_commit_and_a_stale_page_does_nothing(
        layout: Layout, mirror: Path, tmp_path: Path) -> None:
    """A pull that would delete more than max_delete, held: the banner's button applies it (the form names
    the remote commit it showed); a form naming another remote commit, or none, changes nothing."""
    pipeline = make_pipeline(layout, max_delete="3", remote=f"file://{mirror}")
    for n in range(6):
        write(layout, f"kb/n{n}.md", f"note {n}\n")
    pipeline.commit([""])
    git(layout.git_dir, "push", "-q", f"file://{mirror}", "main")
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({f"kb/n{n}.md": None for n in range(5)})
    record = PullRecord()
    assert pull.pull(pipeline, record).outcome == pull.HELD
    access = Access("open")

    def request(asked: Any) -> Any:
        answer = perform_request(pipeline, record, asked)
        if answer.error is not None:
            raise CommitterError(answer.error)
        return answer

    pages = Pages(pipeline.repo, access, lambda: {"push": {"remote": None}, **parts_state(pipeline, record)}, request)
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages)
    server.start()
    try:
        origin = {"Origin": f"http://127.0.0.1:{server.port}"}
        text = fetch(server.port, "/").text
        assert f'name="seen" value="{remote_head}"' in text
        for seen in ("", "b" * 40):
            refused = post(server.port, "/holds/confirm", {"seen": seen, "csrf": access.csrf}, **origin)
            assert refused.status in (400, 409) and pipeline.head != remote_head
        done = post(server.port, "/holds/confirm", {"seen": remote_head, "csrf": access.csrf}, **origin)
        assert done.status == 303, done.text[-500:]
        assert pipeline.head == remote_head and sorted(p.name for p in (layout.data / "kb").iterdir()) == ["n5.md"]
    finally:
        server.stop()


def test_the_secret_is_in_no_page_and_no_log_line_from_hold_to_allowed(site: Site) -> None:  # noqa: F811
    """From the held commit through the banner, the review, a refused and an accepted "not a secret": the
    token appears in no page before it is said not to be one, and in no logged event (nor a long part of it)."""
    from structlog.testing import capture_logs

    with capture_logs() as logged:
        write(site.layout, "notes/gh.md", f"example:\n{TOKEN}\n")
        site.pipeline.commit(["notes/gh.md"])
        pages = [site.get("/").text, site.get("/secret?path=notes/gh.md", Sec_Fetch_Site="same-origin").text]
        sha = pages[-1].split('name="sha" value="')[1].split('"')[0]
        pages.append(site.post("/secret", {"path": "notes%2Fgh.md", "sha": "0" * 40, "csrf": site.access.csrf},
                               Origin=site.origin).text)
        done = site.post("/secret", {"path": "notes%2Fgh.md", "sha": sha, "csrf": site.access.csrf},
                         Origin=site.origin)
    assert done.status == 303 and "notes/gh.md" in tree(site)  # its commit page shows it: said not a secret
    said = "\n".join(pages) + "\n" + "\n".join(repr(event) for event in logged)
    assert any(e.get("event") == "secret_allowed" for e in logged)
    assert TOKEN not in said and TOKEN[4:24] not in said


def test_put_back_when_the_folder_became_a_file_names_each_file_and_keeps_that_file(
        site: Site, tmp_path: Path) -> None:  # noqa: F811
    delete_five(site)
    (site.layout.data / "kb").rename(tmp_path / "kb-moved")
    (site.layout.data / "kb").write_text("a file now\n")
    seen = site.pipeline.holds.hold.status()["key"]  # type: ignore[union-attr]
    done = site.post("/holds/put-back", {"seen": seen, "csrf": site.access.csrf}, Origin=site.origin)
    assert done.status == 200 and done.text.count("kb is a file now; move it away") == 5, done.text[-800:]
    assert (site.layout.data / "kb").read_text() == "a file now\n"
