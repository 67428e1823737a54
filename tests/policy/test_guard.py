"""The mass-deletion guard as a pure policy."""

from committer.policy.guard import DATA_DIR_EMPTY, DATA_DIR_MISSING, MAX_DELETE, Hold, decide, release


def paths(n: int, prefix: str = "f") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_up_to_max_delete_deletions_go_through() -> None:
    d = decide(paths(100), max_delete=100, data_dir_state="ok", hold=None, now="t")
    assert d.allowed == frozenset(paths(100)) and d.hold is None and not d.new_hold


def test_more_than_max_delete_are_held_and_nothing_deleted() -> None:
    d = decide(paths(101), max_delete=100, data_dir_state="ok", hold=None, now="t0")
    assert d.allowed == frozenset() and d.new_hold
    assert d.hold is not None and d.hold.reason == MAX_DELETE and len(d.hold.paths) == 101
    assert d.hold.status()["count"] == 101 and len(d.hold.status()["paths"]) == 50


def test_while_held_every_deletion_joins_the_hold() -> None:
    first = decide(paths(150), max_delete=100, data_dir_state="ok", hold=None, now="t0").hold
    later = decide(["other"], max_delete=100, data_dir_state="ok", hold=first, now="t1")
    assert later.allowed == frozenset() and not later.new_hold
    assert later.hold is not None and "other" in later.hold.paths and later.hold.since == "t0"


def test_an_empty_or_missing_data_directory_holds_any_deletion() -> None:
    empty = decide(["a"], max_delete=100, data_dir_state="empty", hold=None, now="t")
    assert empty.allowed == frozenset() and empty.hold is not None and empty.hold.reason == DATA_DIR_EMPTY
    missing = decide(["a"], max_delete=100, data_dir_state="missing", hold=None, now="t")
    assert missing.hold is not None and missing.hold.reason == DATA_DIR_MISSING


def test_no_deletions_change_nothing() -> None:
    hold = Hold(MAX_DELETE, frozenset({"x"}), "t")
    assert decide([], max_delete=0, data_dir_state="empty", hold=hold, now="t2").hold is hold


def test_the_hold_clears_itself_when_the_files_come_back() -> None:
    hold = Hold(MAX_DELETE, frozenset({"a", "b"}), "t")
    assert release(hold, lambda p: p == "a") == Hold(MAX_DELETE, frozenset({"a"}), "t")
    assert release(hold, lambda p: False) is None
    assert release(None, lambda p: True) is None


def test_a_hold_survives_a_round_trip_through_the_state_file() -> None:
    hold = Hold(MAX_DELETE, frozenset({"a", "b"}), "2026-01-01T00:00:00Z")
    assert Hold.load(hold.record()) == hold
    assert Hold.load({"reason": "bogus", "paths": [], "since": "x"}) is None
    assert Hold.load(None) is None
