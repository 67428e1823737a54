"""The events' schema: the envelope, unique ids, and path lists cut at 1,000 with `truncated: true`."""

from __future__ import annotations

import json

from committer.core import events


def test_every_event_has_the_envelope_and_a_unique_id() -> None:
    made = [events.hold(action=events.SET, reason="mass_delete", paths=["a"]) for _ in range(1000)]
    assert len({e["id"] for e in made}) == 1000
    for event in made[:3]:
        assert list(event)[:4] == ["event", "id", "at", "host"]
        assert event["at"].endswith("Z") and "T" in event["at"]


def test_a_path_list_over_1000_is_cut_and_says_truncated() -> None:
    lists = events.PathLists("written", "deleted")
    lists.extend("written", (f"{n}.md" for n in range(1500)))
    lists.add("deleted", "gone.md")
    pulled = events.git_pull(outcome="fast_forward", old="a" * 40, new="b" * 40, remote_head="b" * 40, written=lists)
    assert len(pulled["paths"]["written"]) == 1000 and pulled["truncated"] is True
    assert pulled["counts"] == {"written": 1500, "deleted": 1}
    small = events.PathLists("written", "deleted")
    small.add("written", "one.md")
    merged = events.git_pull(outcome="merge", old=None, new="c" * 40, remote_head=None, written=small)
    assert merged["truncated"] is False
    held = events.hold(action=events.SET, reason="mass_delete", paths=[f"{n:05}" for n in range(2000)])
    assert held["count"] == 2000 and len(held["paths"]) == 1000 and held["truncated"] is True


def test_the_body_is_compact_ascii_json_of_the_event() -> None:
    event = events.git_conflict(path="notes/é.md", copy="notes/é (conflict).md", why="changed here", remote_head=None)
    body = events.body(event)
    assert body.isascii() and b"\n" not in body and json.loads(body) == event
