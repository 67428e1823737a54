"""A restore never deletes or overwrites a file whose current content is in no commit (held for a secret,
ignored, not committed yet, changed since the last commit): the dry run names each, the run keeps them or
sets them aside as conflict copies, through the CLI and through the page."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import Layout, commit_count, committer, git, tree_files
from tests.serve.test_pages import Site, post, site  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration

TOKEN_TEXT = "my token: ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" + "\n"


def run_once(layout: Layout) -> None:
    proc = committer("run", "--once", *layout.args())
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def loose(layout: Layout) -> Iterator[Layout]:
    """notes/ committed (a.md, b.md), then: a held secret note, an ignored file, a new file, an edit."""
    notes = layout.data / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("a committed\n")
    (notes / "b.md").write_text("b committed\n")
    (layout.data / ".bmignore").write_text("*.scratch\n")
    run_once(layout)
    (notes / "gh.md").write_text(TOKEN_TEXT)
    run_once(layout)  # held: the secret scanner keeps it out
    status = json.loads(committer("status", "--json", *layout.args()).stdout)
    assert [h["path"] for h in status["held_files"]] == ["notes/gh.md"]
    (notes / "todo.scratch").write_text("ignored here\n")
    (notes / "new.md").write_text("written a moment ago\n")
    (notes / "b.md").write_text("b edited, not committed yet\n")
    yield layout


def test_dry_run_of_a_folder_restore_names_every_file_in_no_commit(loose: Layout) -> None:
    before = commit_count(loose.git_dir)
    proc = committer("restore", "notes", "--to", "HEAD", "--dry-run", *loose.args())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "would keep notes/gh.md: held (" in out and "secret" in out.split("notes/gh.md")[1].splitlines()[0]
    assert "would keep notes/todo.scratch: ignored by the rules here" in out
    assert "would keep notes/new.md: not committed yet" in out
    assert "would write notes/b.md (its current content is in no commit: kept beside it as a conflict copy)" in out
    assert "would delete" not in out
    assert commit_count(loose.git_dir) == before
    assert (loose.data / "notes" / "b.md").read_text() == "b edited, not committed yet\n"


def test_a_folder_restore_keeps_every_file_in_no_commit(loose: Layout) -> None:
    notes = loose.data / "notes"
    proc = committer("restore", "notes", "--to", "HEAD", *loose.args())
    assert proc.returncode == 0, proc.stderr
    assert "kept notes/gh.md" in proc.stdout and "kept notes/new.md" in proc.stdout
    assert (notes / "gh.md").read_text() == TOKEN_TEXT
    assert (notes / "todo.scratch").read_text() == "ignored here\n"
    assert (notes / "new.md").read_text() == "written a moment ago\n"
    # The restore did what was asked for b.md, and the edit in no commit is beside it, committed now.
    assert (notes / "b.md").read_text() == "b committed\n"
    copies = [p for p in notes.iterdir() if p.name.startswith("b (conflict from before restore, ")]
    assert len(copies) == 1 and copies[0].read_text() == "b edited, not committed yet\n"
    assert f"notes/{copies[0].name}" in tree_files(loose.git_dir)
    assert "notes/gh.md" not in tree_files(loose.git_dir)  # still held, never committed
    status = json.loads(committer("status", "--json", *loose.args()).stdout)
    assert "notes/gh.md" in [h["path"] for h in status["held_files"]]


def test_a_file_restored_to_an_older_version_keeps_its_uncommitted_edit(layout: Layout) -> None:
    (layout.data / "a.md").write_text("v1\n")
    run_once(layout)
    v1 = git(layout.git_dir, "rev-parse", "HEAD").strip()
    (layout.data / "a.md").write_text("v2\n")
    run_once(layout)
    (layout.data / "a.md").write_text("v3, not committed\n")
    proc = committer("restore", "a.md", "--to", v1, *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "a.md").read_text() == "v1\n"
    kept = [p for p in layout.data.iterdir() if p.name.startswith("a (conflict from before restore, ")]
    assert [p.read_text() for p in kept] == ["v3, not committed\n"]


def test_committed_files_are_still_deleted_by_a_folder_restore(loose: Layout) -> None:
    first = git(loose.git_dir, "rev-list", "--max-parents=0", "HEAD").strip()
    (loose.data / "notes" / "later.md").write_text("committed later\n")
    run_once(loose)
    proc = committer("restore", "notes/later.md", "--to", first, "--dry-run", *loose.args())
    assert proc.returncode == 0, proc.stderr
    assert "would delete notes/later.md" in proc.stdout


def test_the_page_shows_the_same_files_and_never_says_nothing_is_lost_wrongly(site: Site) -> None:  # noqa: F811
    data = site.layout.data
    (data / "notes" / "gh.md").write_text(TOKEN_TEXT)
    site.pipeline.commit(["notes/gh.md"])  # held: never committed
    assert "notes/gh.md" in site.pipeline.held
    head = site.pipeline.head
    page = site.get(f"/restore?path=notes&rev={head}", Sec_Fetch_Site="same-origin").text
    assert "<strong>keep</strong> <code>notes/gh.md</code>: held (" in page
    assert "Nothing to do" in page and "it stays as it is" in page
    assert "Nothing is lost" not in page
    done = post(site.port, "/restore", {"path": "notes", "rev": head, "csrf": site.access.csrf},
                Origin=f"http://127.0.0.1:{site.port}")
    assert done.status == 200 and "<code>notes/gh.md</code>" in done.text
    assert (data / "notes" / "gh.md").read_text() == TOKEN_TEXT
    assert site.pipeline.head == head
    # A restore that deletes committed files and keeps the held one says both, truthfully.
    page = site.get(f"/restore?path=notes&rev={site.revs['v1']}", Sec_Fetch_Site="same-origin").text
    assert "<strong>delete</strong> <code>notes/b.md</code>" in page
    assert "<strong>keep</strong> <code>notes/gh.md</code>" in page
    assert "files whose content is in no commit stay" in page
    done = post(site.port, "/restore", {"path": "notes", "rev": site.revs["v1"], "csrf": site.access.csrf},
                Origin=f"http://127.0.0.1:{site.port}")
    assert done.status == 303
    assert (data / "notes" / "gh.md").read_text() == TOKEN_TEXT and not (data / "notes" / "b.md").exists()
