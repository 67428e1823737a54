"""Commit messages: summary line and BM-Meta trailer, checked with git's own trailer parser."""

import json
import subprocess

from committer.commit import message
from committer.commit.message import Counts


def test_summary_names_counts_and_the_first_paths() -> None:
    text = message.summary(Counts(added=1, modified=1, deleted=1), ["notes/b.md", "notes/a.md", "x"])
    assert text == "chore(sync): 3 files changed: notes/a.md, notes/b.md, +1 more"
    assert message.summary(Counts(added=1), ["a.md"]) == "chore(sync): 1 file changed: a.md"


def test_summary_never_carries_control_characters_or_huge_paths() -> None:
    text = message.summary(Counts(added=2), ["line\nbreak", "x" * 500])
    assert "\n" not in text
    assert len(text) < 200


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
    text = message.build(message.summary(Counts(added=1), ["a"]), _trailer())
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
