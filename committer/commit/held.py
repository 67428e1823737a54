"""Files the safety rules keep out of history, with the reason: what `status` lists as held_files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from committer.commit.changes import Skipped
from committer.core import events, logs

log = logs.get(__name__)

LISTED = 1000  # held files listed in status and the state file; past it one last entry counts the rest
WARNED = 100  # `skip` lines one pass logs; past it one `skip_more` line counts the rest (a `*` in .bmignore)


class HeldFiles:
    """Path -> reason of every file kept out; each (path, reason) is warned about once per process."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}
        self._warned: set[tuple[str, str]] = set()
        self._announced: dict[str, str] = {}  # what the last `hold` events said is held

    def note(self, skipped: Iterable[Skipped], **context: Any) -> None:
        """Record what one pass skipped; a new reason is logged (`skip`), the first WARNED of a pass each."""
        quiet: dict[str, int] = {}
        logged = 0
        for item in skipped:
            self.reasons[item.path] = item.reason
            key = (item.path, item.reason)
            if key not in self._warned:
                self._warned.add(key)
                if logged < WARNED:
                    logged += 1
                    log.warning("skip", path=item.path, reason=item.reason, **context)
                else:
                    quiet[item.reason] = quiet.get(item.reason, 0) + 1
        for reason, count in sorted(quiet.items()):
            log.warning("skip_more", reason=reason, count=count, **context,
                        action="also kept out; status lists held_files")

    def committed(self, path: str) -> None:
        """A path went into a commit: no longer held."""
        self.reasons.pop(path, None)

    def keep(self, items: object) -> None:
        """Take the held files a state file listed (`held_files`): looked at again by the next reconcile."""
        if isinstance(items, list):
            self.reasons = {str(i["path"]): str(i.get("reason", "")) for i in items
                            if isinstance(i, dict) and "path" in i and "more" not in i}
            self._announced = dict(self.reasons)  # the process that held them told already

    def announce(self, emit: events.Emit, **context: Any) -> None:
        """After a pass: one `hold` event per reason for files newly held, one for files no longer held."""
        if emit is events.nothing:
            return
        held = _by_reason(p for p in self.reasons.items() if self._announced.get(p[0]) != p[1])
        gone = _by_reason(p for p in self._announced.items() if self.reasons.get(p[0]) != p[1])
        self._announced = dict(self.reasons)
        for action, groups in ((events.RELEASED, gone), (events.SET, held)):
            for reason, paths in sorted(groups.items()):
                emit(events.hold(action=action, reason=reason, paths=paths, **context))

    def take(self) -> set[str]:
        """Every held path, forgotten now: a reconcile looks at each again (and holds it again or commits it)."""
        paths = set(self.reasons)
        self.reasons.clear()
        return paths

    def listing(self, most: int = LISTED) -> list[dict[str, Any]]:
        """Files kept out of history, with the reason, for status: the first `most` by path, then, when
        there are more, one entry that counts them (each was logged with a `skip` warning)."""
        items = sorted(self.reasons.items())
        shown: list[dict[str, Any]] = [{"path": p, "reason": r} for p, r in items[:most]]
        if len(items) > most:
            more = len(items) - most
            shown.append({"path": "", "reason": f"and {more} more held files, each logged once as skip",
                          "more": more})
        return shown

    def __len__(self) -> int:
        return len(self.reasons)

    def __contains__(self, path: object) -> bool:
        return path in self.reasons


def _by_reason(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for path, reason in items:
        groups.setdefault(reason, []).append(path)
    return groups
