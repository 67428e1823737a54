"""The batcher: debounce and maximum delay, with an injected clock (no sleeping)."""

from committer.watch.batcher import Batcher


def test_a_batch_closes_debounce_after_its_last_event() -> None:
    b = Batcher(debounce=2.0, max_delay=30.0)
    b.add("a", now=100.0)
    b.add("b", now=101.5)
    assert b.next_deadline() == 103.5
    assert not b.due(103.4)
    assert b.due(103.5)
    batch = b.take()
    assert batch is not None and batch.paths == {"a", "b"} and batch.first_event == 100.0


def test_a_file_rewritten_every_second_is_committed_after_max_delay() -> None:
    b = Batcher(debounce=2.0, max_delay=5.0)
    due_at = None
    for tick in range(20):
        now = 100.0 + tick * 0.5
        if b.due(now):
            due_at = now
            break
        b.add("busy.md", now=now)
    # debounce alone would never close the batch: the writes come every 0.5 s
    assert due_at == 105.0


def test_paths_are_coalesced_and_take_empties_the_batch() -> None:
    b = Batcher(debounce=1.0, max_delay=10.0)
    for _ in range(1000):
        b.add("same", now=1.0)
    assert len(b) == 1
    assert b.take() is not None
    assert b.take() is None
    assert b.next_deadline() is None and not b.due(1e9)


def test_a_new_batch_starts_its_own_max_delay_clock() -> None:
    b = Batcher(debounce=1.0, max_delay=3.0)
    b.add("x", now=0.0, wall=1000.0)
    b.take()
    b.add("y", now=50.0, wall=1050.0)
    batch = b.take()
    assert batch is not None and batch.first_event == 50.0 and batch.first_event_wall == 1050.0


def test_zero_debounce_is_due_at_once() -> None:
    b = Batcher(debounce=0.0, max_delay=1.0)
    b.add("x", now=7.0)
    assert b.due(7.0)


def test_a_huge_burst_is_folded_into_directories_and_stays_bounded() -> None:
    from committer.core.paths import COALESCE_ABOVE, coalesce

    b = Batcher(debounce=1.0, max_delay=10.0)
    for d in range(2_000):
        for f in range(100):
            b.add(f"copy/d{d}/f{f}.md", now=1.0)
    assert len(b) <= COALESCE_ABOVE
    batch = b.take()
    assert batch is not None and "copy/d0" in batch.paths and "copy/d0/f1.md" not in batch.paths
    assert coalesce({f"f{i}" for i in range(10)}, limit=5) == {""}
    assert coalesce({"a/b/c", "a/b/d", "a/x"}, limit=2) == {"a/b", "a/x"}


def test_once_the_whole_tree_is_a_candidate_nothing_more_is_kept() -> None:
    from committer.core.paths import COALESCE_ABOVE

    b = Batcher(debounce=1.0, max_delay=10.0)
    for i in range(COALESCE_ABOVE + 1):
        b.add(f"top{i}.md", now=1.0)
    b.add("later.md", now=2.0)
    batch = b.take()
    assert batch is not None and batch.paths == {""}
