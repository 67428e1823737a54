"""Conflict copies of Markdown notes are distinct notes: the frontmatter title and permalink get the copy's
conflict suffix (pure cases first, then a real merge conflict with the setting on and off)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from committer.sync.frontmatter import distinct, suffix_of
from tests.conftest import Layout, show, tree_files
from tests.sync.test_pull import Clone, pull, start

SUFFIX = " (conflict from main, 2026-11-23T03-35-00Z)"
COPY = f"notes/plan{SUFFIX}.md"
SLUG = "-conflict-from-main-2026-11-23t03-35-00z"


def note(title: str = "Plan", permalink: str = "notes/plan", body: str = "text\n") -> bytes:
    return f"---\ntitle: {title}\ntype: note\npermalink: {permalink}\ntags:\n- a\n---\n\n# Plan\n{body}".encode()


def test_the_suffix_is_what_the_copy_name_adds() -> None:
    assert suffix_of("notes/plan.md", COPY) == SUFFIX
    assert suffix_of("Makefile", f"Makefile{SUFFIX}") == SUFFIX


def test_title_and_permalink_get_the_suffix_and_nothing_else_changes() -> None:
    out = distinct("notes/plan.md", COPY, note()).decode()
    assert f"title: Plan{SUFFIX}\n" in out
    assert f"permalink: notes/plan{SLUG}\n" in out
    assert out.replace(SUFFIX, "").replace(SLUG, "") == note().decode()


def test_quoted_values_stay_valid_yaml() -> None:
    out = distinct("notes/plan.md", COPY, note(title='"Plan: Q3"', permalink="'notes/plan'"))
    meta = yaml.safe_load(out.decode().split("---")[1])
    assert meta["title"] == f"Plan: Q3{SUFFIX}" and meta["permalink"] == f"notes/plan{SLUG}"


@pytest.mark.parametrize("content", [
    b"no frontmatter\ntitle: Plan\n",
    b"---\ntitle: Plan\nnever closed\n",
    b"---\ntitle: >\n  folded\n---\n",
    b"---\ntitle: Plan # a comment\n---\n",
    b"\xff\xfe---\ntitle: x\n---\n",
])
def test_what_cannot_be_changed_safely_is_left_as_it_is(content: bytes) -> None:
    assert distinct("notes/plan.md", COPY, content) == content


def test_only_markdown_and_only_top_level_keys() -> None:
    assert distinct("a.txt", f"a{SUFFIX}.txt", note()) == note()
    nested = b"---\nmeta:\n  title: inner\n---\n"
    assert distinct("notes/plan.md", COPY, nested) == nested


def test_crlf_files_keep_their_line_ends() -> None:
    content = note().replace(b"\n", b"\r\n")
    out = distinct("notes/plan.md", COPY, content)
    assert f"title: Plan{SUFFIX}\r\n".encode() in out and b"\n" not in out.replace(b"\r\n", b"")


@pytest.mark.integration
@pytest.mark.parametrize("on", [True, False])
def test_a_merge_conflict_copy_of_a_note_is_a_distinct_note(
    layout: Layout, mirror: Path, tmp_path: Path, on: bool
) -> None:
    extra = {} if on else {"COMMITTER_CONFLICT_FRONTMATTER": "false"}
    env = start(layout, f"file://{mirror}", {"notes/plan.md": note().decode()}, env=extra)
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    theirs = note(body="theirs\n")
    clone.commit({"notes/plan.md": theirs.decode()})
    (layout.data / "notes" / "plan.md").write_bytes(note(body="ours\n"))
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    copies = [p for p in (layout.data / "notes").iterdir() if "(conflict from main, " in p.name]
    assert len(copies) == 1
    copy = copies[0]
    suffix = copy.name[len("plan"):-len(".md")]
    text = copy.read_bytes()
    if on:
        assert f"title: Plan{suffix}\n".encode() in text and b"permalink: notes/plan-conflict-from-main-" in text
        assert text.replace(suffix.encode(), b"").replace(
            b"-conflict-from-main-" + text.split(b"-conflict-from-main-")[1].split(b"\n")[0], b"") == theirs
    else:
        assert text == theirs
    assert (layout.data / "notes" / "plan.md").read_bytes() == note(body="ours\n")
    rel = f"notes/{copy.name}"
    assert rel in tree_files(layout.git_dir) and show(layout.git_dir, rel) == text  # committed as written
