"""What a request to the main loop is, what answers it, and the registry from an operation's name to the
code that does it. The kinds themselves (restore, snapshot, ...) are in ops/kinds.py, one line each."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from committer.commit.committer import Committer
from committer.core.errors import CommitterError
from committer.sync.pullstate import PullRecord

# What the push loop does once a request is answered: push at once (ending a wait), push when it next
# can (what is pending, tags included), or nothing.
Push = Literal["now", "soon"]
NOW: Push = "now"
SOON: Push = "soon"
ANSWER_TIMEOUT = 120.0  # the longest anyone waits for the daemon's answer


class Request(Protocol):
    """A request for the main loop: an operation's name, and its arguments as the mailbox carries them."""

    op: ClassVar[str]
    # Commit what is pending before it is done (a notice such as a forced update only records state).
    commit_first: ClassVar[bool]

    def args(self) -> dict[str, Any]:
        """The arguments as JSON values: `{"op": op, "args": args()}` is what the mailbox carries."""
        ...


def as_json(request: Request) -> dict[str, Any]:
    """The request as the mailbox carries it between processes."""
    return {"op": request.op, "args": request.args()}


class Asked:
    """The common part of the request kinds (frozen dataclasses): their arguments are their fields."""

    op: ClassVar[str] = ""
    commit_first: ClassVar[bool] = True

    def args(self) -> dict[str, Any]:
        """The fields as a dict (the JSON the mailbox carries)."""
        values: dict[str, Any] = dataclasses.asdict(self)  # type: ignore[call-overload]  # kinds are dataclasses
        return values


@dataclass(frozen=True)
class Answer:
    """How a request went: its payload (the CLI's JSON) or an error with the CLI's exit code, and what the
    push loop does next."""

    payload: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int = 0
    push: Push | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, message: str, exit_code: int = 1) -> Answer:
        """A failure; the push loop still looks for what is pending, as after any request."""
        return cls(error=message, exit_code=exit_code or 1, push=SOON)

    @classmethod
    def committed(cls, payload: Mapping[str, Any]) -> Answer:
        """A payload whose `sha` is the commit the request made, if it made one: that is pushed now."""
        return cls(payload, push=NOW if payload.get("sha") else SOON)

    def to_json(self) -> dict[str, Any]:
        """The answer file's content, as the CLI reads it."""
        if self.error is not None:
            return {"error": self.error, "exit_code": self.exit_code}
        return {"ok": True, **self.payload}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Answer:
        """An answer file read back (the CLI's side)."""
        if "error" in value:
            try:
                code = int(value.get("exit_code", 1))
            except (TypeError, ValueError):
                code = 1
            return cls.failed(str(value["error"]), code)
        return cls({k: v for k, v in value.items() if k != "ok"})


class UnknownRequest(CommitterError):
    """A request whose operation nobody registered, or whose arguments do not fit it."""

    exit_code = 2


R = TypeVar("R")
Handler = Callable[[Committer, PullRecord, R], Answer]


@dataclass(frozen=True)
class Kind:
    """One registered kind of request."""

    type: type[Any]
    handler: Handler[Any]
    remote: bool  # other processes may ask for it through the mailbox


class Registry:
    """Operation name -> its request type and handler: adding a request is one class, one handler and one
    `register` line."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def register(self, kind: type[R], handler: Handler[R], *, remote: bool = True) -> None:
        """Serve requests of `kind` with `handler`; `remote=False` keeps it for the daemon's own threads."""
        op = str(getattr(kind, "op", ""))
        if not op or op in self._kinds:
            raise ValueError(f"request operation {op!r} is empty or registered twice")
        self._kinds[op] = Kind(kind, handler, remote)

    def unregister(self, op: str) -> None:
        """Forget an operation (a kind registered for a while, as tests do)."""
        self._kinds.pop(op, None)

    def ops(self) -> list[str]:
        """The operations served, in the order they were registered."""
        return list(self._kinds)

    def parse(self, value: Mapping[str, Any], *, remote: bool = False) -> Request:
        """The typed request for `{"op": ..., "args": ...}` (input from another process: checked)."""
        op = value.get("op")
        kind = self._kinds.get(str(op))
        if kind is None or (remote and not kind.remote):
            raise UnknownRequest(f"unknown operation {op!r}")
        args = value.get("args") or {}
        if not isinstance(args, Mapping):
            raise UnknownRequest(f"the arguments of {op!r} are not an object")
        names = {f.name for f in dataclasses.fields(kind.type)} if dataclasses.is_dataclass(kind.type) else set()
        try:
            request: Request = kind.type(**{k: v for k, v in args.items() if k in names})
        except TypeError:
            raise UnknownRequest(f"the arguments of {op!r} do not fit it") from None
        return request

    def perform(self, committer: Committer, record: PullRecord, request: Request) -> Answer:
        """Run one request; an expected failure becomes an answer, never an exception."""
        kind = self._kinds.get(request.op)
        if kind is None or not isinstance(request, kind.type):
            return Answer.failed(f"unknown operation {request.op!r}", 2)
        try:
            return kind.handler(committer, record, request)
        except CommitterError as exc:
            return Answer.failed(exc.message, exc.exit_code)
