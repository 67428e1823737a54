"""The live stream's ring and clients: resume after an id, the whole ring for an unknown one, a client too
far behind dropped without holding up the publisher, the client limit."""

from __future__ import annotations

from committer.core import events
from committer.ops.stream import QUEUE, Stream


def made(n: int) -> events.Event:
    return events.hold(action=events.SET, reason=f"r{n}", paths=[])


def test_a_client_resumes_after_the_id_it_saw_and_gets_the_ring_for_an_unknown_one() -> None:
    stream = Stream(ring=5)
    sent = [made(n) for n in range(8)]
    for event in sent:
        stream.publish(event)
    after = stream.join(sent[5]["id"], lambda: None)
    assert after is not None and [i.id for i in after.take()] == [sent[6]["id"], sent[7]["id"]]
    unknown = stream.join(sent[0]["id"], lambda: None)  # fell out of the ring
    assert unknown is not None and [i.id for i in unknown.take()] == [e["id"] for e in sent[3:]]
    fresh = stream.join(None, lambda: None)
    assert fresh is not None and fresh.take() == []


def test_a_client_too_far_behind_is_dropped_and_the_others_keep_up() -> None:
    stream = Stream()
    wakes: list[int] = []
    slow = stream.join(None, lambda: wakes.append(1))
    quick = stream.join(None, lambda: None)
    assert slow is not None and quick is not None
    for n in range(QUEUE + 1):
        stream.publish(made(n))
        if n % 100 == 0:
            quick.take()
    assert slow.dropped and not quick.dropped and stream.clients == 1


def test_clients_beyond_the_limit_are_refused_and_a_closed_stream_takes_none() -> None:
    stream = Stream(clients=1)
    first = stream.join(None, lambda: None)
    assert first is not None and stream.join(None, lambda: None) is None
    first.close()
    assert stream.join(None, lambda: None) is not None
    stream.close()
    assert stream.clients == 0 and stream.join(None, lambda: None) is None
