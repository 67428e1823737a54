"""Commit messages: summary line and BM-Meta trailer, checked with git's own trailer parser."""

import json
import os
import subprocess
import time
from pathlib import Path

from committer.commit import message
from committer.commit.message import Counts
from tests.conftest import Layout, git


def _subject(**kw: object) -> str:
    return message.subject(message.About(**kw))  # type: ignore[arg-type]


def test_a_save_names_the_path_it_was_about_first() -> None:
    assert _subject(saved=["notes/plan.md"]) == "chore(sync): save notes/plan.md"
    assert _subject(saved=["notes/plan.md", "a.md", "b.md"]) == "chore(sync): save notes/plan.md and 2 more"
    # the rest counts every other change: deletions and renames too
    assert (_subject(saved=["z.md"], deleted=["a.md"], renamed=[("b.md", "c.md")])
            == "chore(sync): save z.md and 2 more")


def test_the_most_recently_changed_path_comes_first(tmp_path: Path) -> None:
    for name, when in (("a.md", 300), ("notes/plan.md", 500), ("z.md", 100)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, ns=(when * 10**9, when * 10**9))
    ordered = message.most_recent_first(tmp_path, ["z.md", "a.md", "notes/plan.md", "gone.md"])
    assert ordered[:3] == ["notes/plan.md", "a.md", "z.md"] and ordered[3] == "gone.md"


def test_renames_deletions_and_other_operations_say_what_happened() -> None:
    assert (_subject(renamed=[("notes/todo.md", "notes/2026/todo.md")])
            == "chore(sync): rename notes/todo.md → notes/2026/todo.md")
    assert (_subject(renamed=[("old/a.md", "new/a.md"), ("old/b/c.md", "new/b/c.md")])
            == "chore(sync): rename old/ → new/ (2 files)")
    assert _subject(deleted=["journal/a.md"]) == "chore(sync): delete journal/a.md"
    assert (_subject(deleted=["journal/1.md", "journal/2.md", "journal/x/3.md"])
            == "chore(sync): delete 3 files in journal/")
    assert _subject(deleted=["a.md", "b/c.md"]) == "chore(sync): delete 2 files"
    assert (_subject(saved=["notes/plan.md"], op="restore", path="notes/plan.md", to="2026-12-01 18:00")
            == "chore(sync): restore notes/plan.md to 2026-12-01 18:00")
    assert _subject(deleted=["a", "b"], op="restore", path=".", to="2026-12-01 18:00").endswith(
        "restore everything to 2026-12-01 18:00")
    confirmed = _subject(deleted=[f"d/{n}" for n in range(150)], op="confirm-deletes")
    assert confirmed == "chore(sync): confirm 150 deletions"
    assert _subject(deleted=["x.log"], op="untrack") == "chore(sync): stop tracking x.log (ignored now)"
    assert message.merge_subject("GitHub") == "chore(sync): merge from GitHub"
    assert message.merge_subject("origin", 2) == "chore(sync): merge from origin (2 conflict copies)"


def test_a_long_subject_is_cut_at_its_end_never_losing_the_folder() -> None:
    long = "projects/" + "very-long-name-" * 20 + ".md"
    text = _subject(saved=[long, "b.md"])
    assert text.startswith("chore(sync): save projects/very-long-name-") and text.endswith("… and 1 more")
    assert len(text) <= message.MAX_SUBJECT + len("chore(sync): ")
    escaped = _subject(saved=[os.fsdecode(b"bad\xff" * 40)])
    assert "\\xf…" not in escaped and "\\x…" not in escaped and escaped.endswith("…")


def test_a_subject_never_carries_control_characters() -> None:
    assert "\n" not in _subject(saved=["line\nbreak", "x" * 500])


def _trailer() -> str:
    return message.trailer_value(
        batch="b-1", host="h", counts=Counts(1, 2, 3, 4), first_event="2026-01-01T00:00:00.000Z",
        bmmeta={"actor": "agent", "note": "multi\nline ü"},
    )


def test_trailer_is_one_line_of_compact_json_with_every_field() -> None:
    value = _trailer()
    assert "\n" not in value and ", " not in value
    meta = json.loads(value)
    assert meta == {
        "v": 1, "batch": "b-1", "host": "h", "added": 1, "modified": 2, "deleted": 3, "renamed": 4,
        "first_event": "2026-01-01T00:00:00.000Z", "bmmeta": {"actor": "agent", "note": "multi\nline ü"},
    }


def test_bmmeta_key_is_absent_without_a_bmmeta_file() -> None:
    value = message.trailer_value(batch="b", host="h", counts=Counts(), first_event="t")
    assert "bmmeta" not in json.loads(value)


def test_git_interpret_trailers_parses_the_trailer() -> None:
    text = message.build(_subject(saved=["a"]), _trailer())
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=text, capture_output=True, text=True, check=True
    ).stdout
    key, _, value = parsed.strip().partition(": ")
    assert key == "BM-Meta"
    assert json.loads(value)["bmmeta"]["actor"] == "agent"
    assert message.parse_trailer(text) == json.loads(value)


def test_parse_trailer_tolerates_messages_without_one() -> None:
    assert message.parse_trailer("hand-made commit\n\nno trailer") is None
    assert message.parse_trailer("x\n\nBM-Meta: {broken") is None


def test_real_commits_get_the_subject_of_what_they_did(layout: Layout) -> None:
    from committer.ops.restore import restore
    from tests.commit.test_pipeline import make_pipeline, write

    p = make_pipeline(layout)

    def last() -> str:
        return git(layout.git_dir, "log", "-1", "--format=%s").strip()

    for name, when in (("notes/todo.md", 100), ("notes/plan.md", 300), ("a.md", 200)):
        os.utime(write(layout, name, f"{name}\n"), (when, when))
    p.reconcile()
    assert last() == "chore(sync): save notes/plan.md and 2 more"  # the file changed last, not "a.md"
    os.renames(layout.data / "notes" / "todo.md", layout.data / "notes" / "2026" / "todo.md")
    p.commit(["notes/todo.md", "notes/2026/todo.md"])
    assert last() == "chore(sync): rename notes/todo.md → notes/2026/todo.md"
    first = git(layout.git_dir, "rev-parse", "HEAD").strip()
    for n in range(3):
        write(layout, f"journal/{n}.md", f"day {n}\n")
    p.commit([f"journal/{n}.md" for n in range(3)])
    for n in range(3):
        (layout.data / "journal" / f"{n}.md").unlink()
    p.commit([f"journal/{n}.md" for n in range(3)])
    assert last() == "chore(sync): delete 3 files in journal/"
    write(layout, "notes/plan.md", "changed\n")
    p.commit(["notes/plan.md"])
    git(layout.git_dir, "update-ref", "refs/tags/then", first)
    restore(p, "notes/plan.md", "then")
    when = int(git(layout.git_dir, "show", "-s", "--format=%ct", first))
    assert last() == f"chore(sync): restore notes/plan.md to {time.strftime('%Y-%m-%d %H:%M', time.localtime(when))}"
    meta = message.parse_trailer(git(layout.git_dir, "log", "-1", "--format=%B"))
    assert meta is not None and meta["op"] == "restore" and meta["path"] == "notes/plan.md"
