"""The holds on the pages over real HTTP, in process, on a real repository: held deletions confirmed or put
back, a held secret reviewed and committed once, each POST refused without the CSRF token or from another
site (nothing changes), and the banner's words in every state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from committer.commit.committer import Committer
from committer.core import events
from committer.ops.state import parts_state
from committer.serve import wording
from committer.serve.access import Access
from committer.serve.pages import Pages
from committer.sync.pullstate import PullRecord
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, git
from tests.serve.test_pages import Answer, fetch, perform, post, serving

TOKEN = "ghp_" + "Zq8Lm3Rt7Vx1Bn5Kc9Hd2Fg6Js4Pw0Ye8Ua3M"[:36]
PUSHED = {"remote": "https://github.com/o/r.git", "pending_commits": 0, "last_push_at": "2026-11-30T10:00:00Z",
          "last_error": None, "consecutive_failures": 0}


@dataclass
class Site:
    port: int
    pipeline: Committer
    layout: Layout
    access: Access
    push: dict[str, Any]
    emitted: list[dict[str, Any]]

    def get(self, path: str, **headers: str) -> Answer:
        return fetch(self.port, path, headers={k.replace("_", "-"): v for k, v in headers.items()})

    def post(self, path: str, fields: dict[str, str], **headers: str) -> Answer:
        return post(self.port, path, fields, **headers)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def site(layout: Layout) -> Iterator[Site]:
    pipeline = make_pipeline(layout, max_delete="3")
    emitted: list[dict[str, Any]] = []
    pipeline.step.emit = emitted.append
    for n in range(6):
        write(layout, f"kb/n{n}.md", f"note {n}\n")
    pipeline.commit([""])
    access = Access("open")
    push = dict(PUSHED)
    pages = Pages(pipeline.repo, access, lambda: {"push": push, **parts_state(pipeline, PullRecord())},
                  perform(pipeline))
    with serving(pages) as port:
        yield Site(port, pipeline, layout, access, push, emitted)


def delete_five(site: Site) -> None:
    for n in range(5):
        (site.layout.data / f"kb/n{n}.md").unlink()
    site.pipeline.commit(["kb"])
    assert site.pipeline.holds.hold is not None and len(site.pipeline.holds.hold.paths) == 5


def tree(site: Site) -> list[str]:
    return git(site.layout.git_dir, "ls-tree", "-r", "--name-only", "HEAD").split()


def refused_every_way(site: Site, path: str, fields: dict[str, str]) -> None:
    """No token, a wrong one, a JSON body, another site's Origin or Sec-Fetch-Site: 403, nothing changes."""
    head = site.pipeline.head
    assert site.post(path, fields).status == 403
    assert site.post(path, {**fields, "csrf": "wrong"}).status == 403
    as_json = fetch(site.port, path, "POST", json.dumps({**fields, "csrf": site.access.csrf}).encode(),
                    {"Content-Type": "application/json"})
    assert as_json.status == 403
    assert site.post(path, {**fields, "csrf": site.access.csrf}, Origin="http://evil.example").status == 403
    assert site.post(path, {**fields, "csrf": site.access.csrf}, Sec_Fetch_Site="cross-site").status == 403
    assert site.pipeline.head == head


def test_the_banner_lists_held_deletions_in_words_with_both_buttons(site: Site) -> None:
    delete_five(site)
    text = site.get("/").text
    assert "5 files were deleted at once; nothing was committed. Confirm if you meant it, or put them back." in text
    assert all(f"<li><code>kb/n{n}.md</code></li>" in text for n in range(5))
    assert 'id="confirm-deletes">Confirm these deletions</button>' in text
    assert 'id="put-back">Put them back</button>' in text
    assert f'name="csrf" value="{site.access.csrf}"' in text
    said = text[text.index('id="hold-said"') :]
    assert "max_delete" not in said[: said.index("</strong>")]  # the setting is a detail, not the explanation
    assert "max_delete setting" in text
    assert "everything is backed up" not in text


def test_confirm_these_deletions_needs_the_token_and_the_same_origin(site: Site) -> None:
    delete_five(site)
    hold = site.pipeline.holds.hold
    assert hold is not None
    fields = {"seen": hold.status()["key"]}
    refused_every_way(site, "/holds/confirm", fields)
    assert site.pipeline.holds.hold == hold and "kb/n0.md" in tree(site)
    done = site.post("/holds/confirm", {**fields, "csrf": site.access.csrf}, Origin=site.origin)
    assert done.status == 303 and done.headers["location"] == f"/commit/{site.pipeline.head}"
    assert tree(site) == ["kb/n5.md"] and site.pipeline.holds.hold is None
    meta = json.loads(git(site.layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))
    assert meta["op"] == "confirm-deletes" and meta["deleted"] == 5
    assert 'id="hold"' not in site.get("/").text


def test_a_hold_that_changed_since_the_page_is_not_confirmed(site: Site) -> None:
    delete_five(site)
    head = site.pipeline.head
    stale = site.pipeline.holds.hold.status()["key"]  # type: ignore[union-attr]
    (site.layout.data / "kb/n5.md").unlink()
    site.pipeline.commit(["kb"])  # joins the hold: six now
    refused = site.post("/holds/confirm", {"seen": stale, "csrf": site.access.csrf}, Origin=site.origin)
    assert refused.status == 409 and "changed since the page was shown" in refused.text
    assert site.pipeline.head == head and "6 files were deleted at once" in refused.text


def test_put_them_back_writes_the_files_and_never_over_one_that_came_back(site: Site) -> None:
    delete_five(site)
    head = site.pipeline.head
    fields = {"seen": site.pipeline.holds.hold.status()["key"]}  # type: ignore[union-attr]
    refused_every_way(site, "/holds/put-back", fields)
    assert not (site.layout.data / "kb/n0.md").exists()
    write(site.layout, "kb/n2.md", "rewritten meanwhile\n")
    done = site.post("/holds/put-back", {**fields, "csrf": site.access.csrf}, Origin=site.origin)
    assert done.status == 200, done.text
    assert "4 files written back into the data folder" in done.text
    assert "<strong>kept</strong> <code>kb/n2.md</code>" in done.text and "not overwritten" in done.text
    for n in (0, 1, 3, 4):
        assert (site.layout.data / f"kb/n{n}.md").read_text() == f"note {n}\n"
    assert (site.layout.data / "kb/n2.md").read_text() == "rewritten meanwhile\n"
    assert site.pipeline.head == head and site.pipeline.holds.hold is None  # nothing committed, nothing held
    assert 'id="hold"' not in site.get("/").text


def test_a_held_secret_is_explained_with_no_backup_and_the_next_step(site: Site) -> None:
    write(site.layout, "notes/gh.md", f"# Setup\n\nuse this:\ntoken = {TOKEN}\n")
    site.pipeline.commit(["notes/gh.md"])
    text = site.get("/").text
    assert "<code>notes/gh.md</code> was not saved: it looks like it holds a secret</strong> (github-token)" in text
    assert "It has no backup:" in text and 'href="/secret?path=notes%2Fgh.md"' in text
    assert "everything is backed up" not in text and TOKEN not in text
    assert site.get("/secret?path=notes/gh.md").status == 403  # a review opens from these pages only
    review = site.get("/secret?path=notes/gh.md", Sec_Fetch_Site="same-origin")
    assert review.status == 200
    assert "(<code>github-token</code>) on <strong>line 4</strong> of <code>notes/gh.md</code>" in review.text
    assert "This file has no backup." in review.text and ".bmignore" in review.text
    assert TOKEN not in review.text and TOKEN[4:20] not in review.text
    assert 'id="not-a-secret"' in review.text


def test_it_is_not_a_secret_commits_the_reviewed_file_once_and_records_it(site: Site) -> None:
    write(site.layout, "notes/gh.md", f"example for the docs:\n{TOKEN}\n")
    site.pipeline.commit(["notes/gh.md"])
    review = site.get("/secret?path=notes/gh.md", Sec_Fetch_Site="same-origin").text
    sha = review.split('name="sha" value="')[1].split('"')[0]
    fields = {"path": "notes%2Fgh.md", "sha": sha}
    refused_every_way(site, "/secret", fields)
    write(site.layout, "notes/gh.md", f"example for the docs, edited:\n{TOKEN}\n")
    changed = site.post("/secret", {**fields, "csrf": site.access.csrf}, Origin=site.origin)
    assert changed.status == 409 and "changed since it was reviewed: nothing was committed" in changed.text
    assert 'id="not-a-secret"' in changed.text  # shown again, with the new content's id
    assert "notes/gh.md" not in tree(site)
    sha = changed.text.split('name="sha" value="')[1].split('"')[0]
    done = site.post("/secret", {**fields, "sha": sha, "csrf": site.access.csrf}, Origin=site.origin)
    assert done.status == 303 and done.headers["location"] == f"/commit/{site.pipeline.head}"
    assert "notes/gh.md" in tree(site) and "notes/gh.md" not in site.pipeline.held.reasons
    meta = json.loads(git(site.layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))
    assert meta["allowed_secret"] == "notes/gh.md" and meta["op"] == "allow-secret"
    assert {"batch", "host", "added", "first_event"} <= set(meta)  # the trailer's other keys stay
    commit = [e for e in site.emitted if e["event"] == events.GIT_COMMIT][-1]
    assert commit["op"] == "allow-secret" and commit["paths"]["added"] == ["notes/gh.md"]
    write(site.layout, "notes/gh.md", f"changed again:\n{TOKEN}\n")
    head = site.pipeline.head
    site.pipeline.commit(["notes/gh.md"])
    assert site.pipeline.head == head and "notes/gh.md" in site.pipeline.held.reasons  # once, not for ever


@pytest.mark.parametrize(("push", "holds", "says", "never"), [
    ({"remote": None}, {}, "Kept on this machine only", "backed up"),
    ({**PUSHED, "consecutive_failures": 3, "pending_commits": 2,
      "last_error": {"message": "the remote refused the credentials"}}, {},
     "sending is failing</strong> (3 tries in a row); <strong>2 changes waiting to be sent", "backed up"),
    ({**PUSHED, "last_push_at": None, "pending_commits": 4}, {},
     "nothing has been sent from here yet</strong>; 4 changes waiting to be sent", "backed up"),
    ({**PUSHED, "pending_commits": 1}, {}, "<strong>1 change waiting to be sent</strong>", "backed up"),
    (PUSHED, {"held_files": [{"path": "big.iso", "reason": "too large"}]},
     "every saved change is sent, but <a href=\"#held-files\"><strong>1 file kept out</strong></a> (no backup)",
     "everything is backed up"),
    (PUSHED, {"held_files": [{"path": "a.md", "reason": "looks like it contains a secret (npm-token)"}]},
     "<a href=\"#secret-1\"><strong>1 file kept out</strong></a>", "everything is backed up"),
    (PUSHED, {"held": {"reason": "data_dir_empty", "count": 9, "paths": [], "since": "x"}},
     "The data folder is empty although the history has 9 files in it", "everything is backed up"),
    (PUSHED, {}, "everything is backed up.", "waiting"),
])
def test_the_banner_says_each_state_honestly(push: dict[str, Any], holds: dict[str, Any], says: str,
                                            never: str) -> None:
    from committer.serve.pages import ENV

    state = {"push": push, "held_files": [], "held": None, **holds}
    text = " ".join(ENV.get_template("_holds.html").render(banner=wording.banner(state, 0.0), csrf="t").split())
    assert says in text and never not in text
    if push.get("remote") and not push.get("last_push_at"):
        assert "Last sent never" in text and "backed up" not in text  # never both at once


def test_the_pages_say_everything_is_backed_up_only_when_it_is(site: Site) -> None:
    assert "everything is backed up." in site.get("/").text
    site.push["pending_commits"] = 2
    text = site.get("/").text
    assert "2 changes waiting to be sent" in text and "backed up" not in text


def test_the_review_page_refuses_what_it_should_and_never_reads_outside(site: Site) -> None:
    same = {"Sec_Fetch_Site": "same-origin"}
    assert site.get("/secret?path=../../etc/passwd", **same).status == 404
    assert "is not in the data directory" in site.get("/secret?path=nope.md", **same).text
    assert "cannot be read" in site.get("/secret?path=kb", **same).text
    clean = site.get("/secret?path=kb/n5.md", **same)
    assert clean.status == 200 and "Nothing in <code>kb/n5.md</code> looks like a secret now" in clean.text
    head = site.pipeline.head
    refused = site.post("/secret", {"path": "kb%2Fn5.md", "sha": "", "csrf": site.access.csrf}, Origin=site.origin)
    assert refused.status == 400  # no reviewed content named: nothing is committed
    assert site.pipeline.head == head
    (site.layout.data / "kb" / "link").symlink_to("/etc")
    assert "symbolic link" in site.get("/secret?path=kb/link/passwd", **same).text


def test_a_long_hold_lists_its_first_files_and_counts_the_rest() -> None:
    from committer.serve.pages import ENV

    held = {"reason": "max_delete", "count": 152, "paths": [f"j/{n:03}.md" for n in range(50)], "since": "x",
            "key": "k"}
    text = ENV.get_template("_holds.html").render(banner=wording.banner({"push": PUSHED, "held": held}, 0.0),
                                                  csrf="t")
    assert "152 files were deleted at once; nothing was committed." in text
    assert text.count("<li><code>j/") == 50 and "and 102 more" in text
    one = wording.hold_words({"reason": "max_delete", "count": 1})[0]
    assert one.startswith("1 file was deleted at once")
