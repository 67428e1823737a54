"""A note moved and edited in one batch is a rename when it is at least half alike (git's rule): per-note
history goes on, a folder moved with edits is not held by the deletion guard, and the search is bounded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from committer.commit import similar
from committer.commit.similar import fingerprint, pair_similar, score
from tests.commit.test_pipeline import make_pipeline, trailer
from tests.conftest import Layout, SentEvents, committer, git, tree_files


def note(title: str, lines: int = 12, folder: str = "notes") -> str:
    """A basic-memory note: frontmatter with title and permalink, then a body."""
    slug = title.lower().replace(" ", "-")
    body = "".join(f"- observation {i} about {title}: some words that stay the same\n" for i in range(lines))
    return f"---\ntitle: {title}\ntype: note\npermalink: {folder}/{slug}\n---\n\n# {title}\n\n{body}"


def moved(text: str, old_folder: str, new_folder: str) -> str:
    """What basic-memory writes on a move with update_permalinks_on_move: the permalink rewritten."""
    return text.replace(f"permalink: {old_folder}/", f"permalink: {new_folder}/")


def test_similarity_is_the_share_of_the_larger_content_found_in_the_other() -> None:
    a = note("Alpha").encode()
    assert score(fingerprint(a), fingerprint(a)) == 1.0
    assert score(fingerprint(a), fingerprint(moved(a.decode(), "notes", "archive").encode())) > 0.9
    assert score(fingerprint(a), fingerprint(note("Something else entirely", 3).encode())) < 0.5
    assert score(fingerprint(b"x" * 1000), fingerprint(b"x" * 400)) == 0.0  # too different in size
    assert score(fingerprint(b""), fingerprint(b"")) == 0.0
    long_line = b"y" * 10_000  # one long line is cut into 64-byte chunks, as git does
    assert score(fingerprint(long_line), fingerprint(long_line[:-100] + b"z" * 100)) > 0.95


def test_pairs_are_best_first_and_each_file_is_in_one_pair() -> None:
    base = note("Base", 20).encode()
    close = base.replace(b"observation 3", b"remark 3")
    further = base.replace(b"observation 3", b"x").replace(b"observation 4", b"y").replace(b"observation 5", b"z")
    deleted = {"a/base.md": fingerprint(base)}
    added = {"b/further.md": fingerprint(further), "b/close.md": fingerprint(close)}
    assert pair_similar(deleted, added) == {"a/base.md": "b/close.md"}
    # same-name pairs win over a better-scoring pair with another name
    assert pair_similar(deleted, {"b/base.md": fingerprint(further), "b/close.md": fingerprint(close)}) == {
        "a/base.md": "b/base.md"}


def test_a_basic_memory_move_that_rewrites_the_permalink_is_a_rename(layout: Layout) -> None:
    p = make_pipeline(layout)
    (layout.data / "notes").mkdir()
    text = note("Coffee Brewing")
    (layout.data / "notes" / "coffee-brewing.md").write_text(text)
    (layout.data / "notes" / "other.md").write_text(note("Other"))
    first = p.commit(["notes"]).sha
    (layout.data / "archive").mkdir()
    (layout.data / "notes" / "coffee-brewing.md").unlink()
    (layout.data / "archive" / "brewing-coffee.md").write_text(moved(text, "notes", "archive"))
    result = p.commit(["notes", "archive"])
    assert result.sha is not None
    assert result.changes.renames == {"notes/coffee-brewing.md": "archive/brewing-coffee.md"}
    meta = trailer(layout)
    assert (meta["renamed"], meta["added"], meta["deleted"]) == (1, 0, 0)
    assert tree_files(layout.git_dir) == {"archive/brewing-coffee.md", "notes/other.md"}
    # then edited again: `committer log` of the new name goes back to the note's first commit
    (layout.data / "archive" / "brewing-coffee.md").write_text(moved(text, "notes", "archive") + "more\n")
    p.commit(["archive"])
    out = committer("log", "archive/brewing-coffee.md", env=layout.env)
    assert out.returncode == 0, out.stderr
    assert "notes/coffee-brewing.md → archive/brewing-coffee.md" in out.stdout
    assert out.stdout.count("chore(sync)") == 3 and first is not None and first[:12] in out.stdout
    listed = [json.loads(line) for line in committer("log", "--json", "archive/brewing-coffee.md",
                                                    env=layout.env).stdout.splitlines()]
    assert [item["sha"] for item in listed][-1] == first
    assert listed[1]["renamed"] == [["notes/coffee-brewing.md", "archive/brewing-coffee.md"]]
    # the folder's log shows the move too
    assert "notes/coffee-brewing.md → archive/brewing-coffee.md" in committer("log", env=layout.env).stdout


def test_a_150_file_folder_move_with_every_file_edited_is_not_held(layout: Layout) -> None:
    p = make_pipeline(layout, max_delete="100")
    (layout.data / "projects").mkdir()
    for i in range(150):
        (layout.data / "projects" / f"n{i:03}.md").write_text(note(f"Project note {i}", folder="projects"))
    p.commit(["projects"])
    os.rename(layout.data / "projects", layout.data / "archive")
    for path in (layout.data / "archive").iterdir():
        path.write_text(moved(path.read_text(), "projects", "archive"))
    result = p.commit(["projects", "archive"])
    assert result.sha is not None and p.holds.hold is None
    assert tree_files(layout.git_dir) == {f"archive/n{i:03}.md" for i in range(150)}
    meta = trailer(layout)
    assert (meta["renamed"], meta["added"], meta["deleted"]) == (150, 0, 0)
    assert "{projects => archive}/n000.md" in git(layout.git_dir, "show", "-M", "--stat", "--format=", "HEAD")


def test_a_dissimilar_delete_and_add_stay_a_delete_and_an_add(layout: Layout) -> None:
    p = make_pipeline(layout)
    (layout.data / "old.md").write_text(note("Old thoughts"))
    p.commit(["old.md"])
    (layout.data / "old.md").unlink()
    (layout.data / "new.md").write_text("a completely different note\nwith nothing in common\n")
    result = p.commit(["old.md", "new.md"])
    assert result.changes.renames == {}
    meta = trailer(layout)
    assert (meta["renamed"], meta["added"], meta["deleted"]) == (0, 1, 1)


def test_past_the_bound_nothing_is_compared_and_the_guard_holds(layout: Layout,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(similar, "SIMILAR_FILES", 4)
    p = make_pipeline(layout, max_delete="3")
    (layout.data / "f").mkdir()
    for i in range(5):
        (layout.data / "f" / f"{i}.md").write_text(note(f"Note {i}", folder="f"))
    p.commit(["f"])
    shutil.move(layout.data / "f", layout.data / "g")
    for path in (layout.data / "g").iterdir():
        path.write_text(moved(path.read_text(), "f", "g"))
    result = p.commit(["f", "g"])
    assert result.changes.renames == {}
    assert p.holds.hold is not None and len(p.holds.hold.paths) == 5


def test_the_daemon_commits_a_folder_moved_with_edits_as_renames_without_a_hold(
    layout: Layout, start_daemon, tmp_path: Path, sent_events: SentEvents  # type: ignore[no-untyped-def]
) -> None:
    (layout.data / "inbox").mkdir()
    for i in range(6):
        (layout.data / "inbox" / f"{i}.md").write_text(note(f"Inbox {i}", folder="inbox"))
    daemon = start_daemon("--debounce", "500ms", env={"COMMITTER_MAX_DELETE": "2", **sent_events.env()})
    sent_events.wait("git_commit")
    staged = tmp_path / "staged"
    shutil.copytree(layout.data / "inbox", staged)
    for path in staged.iterdir():
        path.write_text(moved(path.read_text(), "inbox", "done"))
    os.rename(staged, layout.data / "done")  # the edited folder appears at once, the old one goes
    shutil.rmtree(layout.data / "inbox")
    # both halves land in one batch: they happen well within the debounce
    event = sent_events.wait("git_commit", count=2)[-1]
    assert sorted(event["paths"]["renamed"]) == [[f"inbox/{i}.md", f"done/{i}.md"] for i in range(6)]
    assert not sent_events("hold")  # a hold would have come before the commit
    assert tree_files(layout.git_dir) == {f"done/{i}.md" for i in range(6)}
    assert daemon.stop() == 0


def test_log_of_a_file_follows_a_plain_move_then_an_edit(layout: Layout) -> None:
    p = make_pipeline(layout)
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "old.md").write_text(note("Old"))
    p.commit(["notes"])
    os.rename(layout.data / "notes" / "old.md", layout.data / "notes" / "new.md")
    p.commit(["notes"])
    (layout.data / "notes" / "new.md").write_text(note("Old") + "edited\n")
    p.commit(["notes"])
    lines = committer("log", "notes/new.md", env=layout.env).stdout
    assert lines.count("chore(sync)") == 3 and "notes/old.md → notes/new.md" in lines
    assert committer("log", "notes/old.md", env=layout.env).stdout.count("chore(sync)") == 2


def test_a_name_in_every_folder_is_paired_by_its_folder_with_few_comparisons(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = similar.score

    def counted(a: similar.Print, b: similar.Print) -> float:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(similar, "score", counted)
    texts = {i: note(f"Topic {i}").encode() for i in range(1000)}
    deleted = {f"kb/t{i}/index.md": fingerprint(texts[i]) for i in range(1000)}
    added = {f"archive/t{i}/index.md": fingerprint(texts[i].replace(b"kb", b"archive") + b"x\n") for i in range(1000)}
    pairs = pair_similar(deleted, added)
    assert pairs == {f"kb/t{i}/index.md": f"archive/t{i}/index.md" for i in range(1000)}
    assert len(calls) == 1000  # one comparison a file, not a million
