"""What an AI agent may ask of the history, as tools: the MCP server (serve/mcp.py) serves them to an agent
host over stdio (`committer mcp`) and at /mcp on the daemon's HTTP port (serve/agentsite.py).

The tools read with what the CLI reads with (ops/looking.py, ops/search.py, ops/status.py, the pages'
history), dates as people say them (git/revs.py); the two that write, `restore` and `snapshot`, are the same
requests as the CLI's and the pages' (ops/kinds.py), done by the running daemon when there is one, with the
same safety rules and audit trail. Reads run on a small pool of their own with a deadline (never the
pages' threads nor the health endpoints'), writes on two threads of their own. A failure is one line for the
agent, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from committer.core import clock, logs
from committer.core.errors import CommitterError, ConfigError, redact
from committer.core.paths import display_path, display_text
from committer.core.settings import Settings
from committer.git import revs
from committer.git.repo import GitRepo
from committer.ops import looking
from committer.ops import search as finder
from committer.ops.asking import Request
from committer.ops.kinds import Restore, Snapshot
from committer.ops.syncnow import SyncAnswer
from committer.serve import history, shown, wording
from committer.serve.tools import HISTORY_MAX, SYNC_WAIT_MAX, TOOLS, Result, Spec
from committer.serve.work import PagePool, Stopped, Threads

log = logs.get("committer.agents")

WORKERS = 2  # reads computed at once; more wait (within their deadline) for a free worker
SECONDS = 30.0  # the longest a read may take, waiting for a worker included
ASK_WORKERS = 2  # restores and snapshots waiting for the daemon's answer at once
SHOW_MAX = 200_000  # bytes of a file's text `show` returns; the rest is cut, and it says so
DIFF_MAX = 100_000  # bytes of a diff `diff` returns
PATHS_MAX = 200  # paths listed under one change of `history` (its counts beyond)
LOG = "history with path {}"  # how an agent lists a path's changes
DATES = "a date such as 2026-12-01, 2026-12-01 18:00, yesterday 18:00, last tuesday or 2 hours ago"
STATUS_KEYS = ("data_dir", "branch", "remote", "running", "head", "last_commit_at", "pending_commits",
               "last_push_at", "last_pull_at", "held", "held_files", "conflicts", "unwritable_paths", "last_error")


class Agents:
    """The tools over one repository: `status` gives `committer status`'s keys, `ask` does a request (a
    restore, a snapshot) as the CLI or the pages do and returns its answer's payload."""

    def __init__(self, repo: GitRepo, status: Callable[[], Mapping[str, Any]],
                 ask: Callable[[Request], Mapping[str, Any]], workers: int = WORKERS,
                 seconds: float = SECONDS, sync: Callable[[bool, float], SyncAnswer] | None = None) -> None:
        self.repo = repo
        self.status_of = status
        self.ask = ask
        self.sync = sync
        self.pool = PagePool(repo.runner, workers, seconds)
        self.asks = Threads(ASK_WORKERS)
        self._work: dict[str, Callable[[Mapping[str, Any]], Result]] = {
            "history": self.history, "show": self.show, "diff": self.diff, "search": self.search,
            "status": self.status, "restore": self.restore, "snapshot": self.snapshot,
        }
        if sync is not None:
            self._work["sync_now"] = self.sync_now

    @property
    def tools(self) -> tuple[Spec, ...]:
        """The tools served: those with their work here (sync_now where a sync can be asked for)."""
        return tuple(spec for spec in TOOLS if spec.name in self._work)

    async def call(self, name: str, args: Mapping[str, Any] | None) -> Result:
        """One tool call's result; any failure is a result with one line saying what went wrong."""
        work = self._work.get(name)
        spec = next((s for s in TOOLS if s.name == name), None)
        if work is None or spec is None:
            return Result(f"there is no tool {display_text(name)[:60]!r}", error=True)
        given = dict(args or {})
        try:
            if spec.writes:
                return await self.asks.run(work, given)
            return await self.pool.run(None, lambda job: work(given), f"tool {name}")
        except Stopped as exc:
            return Result(f"{name} was stopped: {exc.message.removeprefix('page stopped: ')}; try a narrower "
                          "question (one file, a shorter time)", error=True)
        except CommitterError as exc:
            return Result(one_line(exc.message), error=True)
        except Exception:  # a bug: logged with its traceback for the operator, one line for the agent
            log.error("agent_tool_failed", tool=name, exc_info=True)
            return Result(f"{name} failed inside committer; its log has the details", error=True)

    def stop(self, reason: str) -> None:
        """From any thread: end every read being computed (committer is stopping)."""
        self.pool.stop_all(reason)

    # -- the tools (on a worker thread) --------------------------------------------------------------

    def history(self, args: Mapping[str, Any]) -> Result:
        repo = self.repo
        path = self.path(args["path"]) if args.get("path") else ""
        limit = max(1, min(HISTORY_MAX, int(args.get("limit") or 20)))
        found: list[history.Commit] = []
        more = False
        window = _window(repo, args.get("since"), args.get("until"))
        if repo.head() is not None and window is not None:
            command = ["log", history.LOG_FORMAT, "-z", f"--max-count={limit + 1}", *window, repo.ref, "--"]
            found = [c for c, _ in history.parse_log(repo.git(*command, *([path] if path else [])).stdout)]
            more, found = len(found) > limit, found[:limit]
            history.attach_changes(repo, found, listed=PATHS_MAX)
        tags = history.snapshot_tags(repo) if found else {}
        changes = [_change(commit, path, tags.get(commit.sha, [])) for commit in found]
        return _json({"changes": changes, "more": more, "path": display_path(path) or None})

    def show(self, args: Mapping[str, Any]) -> Result:
        repo = self.saved()
        at = _text(args.get("at"))
        rel = self.path(args["path"], at)
        if not rel:
            raise ConfigError("path", "name one file of the data directory (history lists what changed)")
        sha = looking.version(repo, at, "at", rel)
        if repo.ls_tree(sha, [rel]).get(rel) is None:
            raise looking.missing(repo, rel, sha, log=LOG)
        blob = history.blob_at(repo, sha, rel)
        when = clock.iso(wording.commit_time(repo, sha))
        about: dict[str, Any] = {"path": display_path(rel), "version": sha, "time": when, "size": blob.size}
        where = f"{display_path(rel)} (version {sha[:12]} of {when})"
        if blob.link:
            target = display_text(blob.content.decode("utf-8", "replace"))
            return Result(f"{where} is a symbolic link to {target}", {**about, "type": "symlink", "target": target})
        if blob.binary or (blob.too_big and not blob.content):
            kind = _media_type(rel, blob.content)
            if blob.too_big and not blob.binary:
                what = f"a text file too large to show here ({blob.size} bytes, {kind})"
            else:
                what = f"a binary file: {blob.size} bytes, {kind}"
            kept = "; kept in LFS" + (", its content not in this repository" if blob.lfs_missing else "")
            return Result(f"{where} is {what}{kept if blob.lfs else ''}; only text is shown",
                          {**about, "type": kind, "binary": blob.binary})
        cut = len(blob.content) > SHOW_MAX
        text = blob.content[:SHOW_MAX].decode("utf-8", "replace")
        if cut:
            text += f"\n[cut here: the first {SHOW_MAX} of {blob.size} bytes are shown]\n"
        return Result(text, {**about, "type": _media_type(rel, blob.content), "cut": cut}, structured=False)

    def diff(self, args: Mapping[str, Any]) -> Result:
        repo = self.saved()
        older, newer = _text(args.get("from")), _text(args.get("to"))
        rel = self.path(args["path"], newer or older)
        compared = looking.compare(repo, rel, older, newer, settings=("from", "to"), log=LOG)
        out = looking.unified(repo, compared)
        about: dict[str, Any] = {"path": display_path(rel), "from": compared.older, "to": compared.newer,
                                 "bytes": len(out), "cut": len(out) > DIFF_MAX}
        if not out:
            return Result(f"{display_path(rel)} is the same in {compared.older[:12]} and {compared.newer[:12]}",
                          about, structured=False)
        text = out[:DIFF_MAX].decode("utf-8", "replace")
        if len(out) > DIFF_MAX:
            text = text[: text.rfind("\n") + 1] + f"[cut here: {len(out)} bytes in all; narrow it with from and to]\n"
        if compared.backwards:
            text = "[from is newer than to: the changes read backwards]\n" + text
        return Result(text, about, structured=False)

    def search(self, args: Mapping[str, Any]) -> Result:
        found = finder.search(self.repo, str(args["text"]), history=bool(args.get("in_history")))
        return _json(finder.as_dict(found))

    def status(self, _args: Mapping[str, Any]) -> Result:
        status = self.status_of()
        return _json({key: status.get(key) for key in STATUS_KEYS})

    def restore(self, args: Mapping[str, Any]) -> Result:
        to = str(args["to"]).strip()
        rel = self.path(args["path"], to)
        dry_run = args.get("dry_run", True) is not False
        if not dry_run:
            log.info("agent_restore", path=display_path(rel) or ".", to=display_text(to))
        answer = dict(self.ask(Restore(rel, to, dry_run)))
        answer.pop("ok", None)
        actions = answer.get("actions") or []
        named = display_path(rel) or "the whole data directory"
        source = str(answer.get("source") or "")[:12]
        if dry_run:
            summary = (f"dry run, nothing was changed: restoring {named} from {to} ({source}) would make "
                       f"{len(actions)} change(s); call restore again with dry_run=false to do it")
        elif answer.get("sha"):
            summary = f"restored {named} from {to} ({source}) as commit {str(answer['sha'])[:12]}"
        else:
            summary = f"{named} is already as it was at {to} ({source}): nothing to restore"
        if answer.get("failed"):
            summary += f"; {len(answer['failed'])} path(s) could not be written (see failed)"
        return _json({"summary": summary, "dry_run": dry_run, **answer})

    def snapshot(self, args: Mapping[str, Any]) -> Result:
        message = str(args.get("message") or "").strip()
        if not message:
            raise ConfigError("message", "a snapshot needs a message saying what it is")
        answer = dict(self.ask(Snapshot(message)))
        answer.pop("ok", None)
        summary = f"snapshot {answer.get('tag')} at {str(answer.get('head') or '')[:12]} (pushed with the next push)"
        return _json({"summary": summary, **answer})

    def sync_now(self, args: Mapping[str, Any]) -> Result:
        assert self.sync is not None  # listed only with it
        wait = args.get("wait", True) is not False
        seconds = args.get("timeout_seconds", 60)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= SYNC_WAIT_MAX:
            raise ConfigError("timeout_seconds", f"a whole number of seconds from 1 to {SYNC_WAIT_MAX}")
        answer = self.sync(wait, float(seconds)).as_dict()
        commit = str(answer.get("commit") or "")[:12] or "no commit yet"
        if answer.get("reason"):
            summary = f"not backed up yet ({commit}): {answer['reason']}"
        elif answer.get("pushed"):
            summary = f"backed up: the remote has {commit}"
        elif not answer.get("remote"):
            summary = f"saved as {commit}; there is no remote to push to"
        else:
            summary = f"saved as {commit}; the push is under way (call again with wait=true to wait for it)"
        return _json({"summary": summary, **answer})

    # -- resources: the files at HEAD ------------------------------------------------------------------

    def files(self, skip: int, most: int) -> tuple[list[str], bool]:
        """Up to `most` paths of HEAD's files after the first `skip`, and whether more follow."""
        head = self.repo.head()
        if head is None:
            return [], False
        found: list[str] = []
        args = ["ls-tree", "-r", "-z", "--name-only", "--full-tree", head]
        with self.repo.stream(args, seconds=SECONDS) as records:
            for index, record in enumerate(records):
                if index < skip:
                    continue
                if len(found) == most:
                    return found, True
                found.append(os.fsdecode(record))
        return found, False

    def read(self, path: str, most: int) -> tuple[bytes, str]:
        """A file's content at HEAD (at most `most` bytes, else an error) and its media type."""
        repo = self.saved()
        rel = self.path(path)
        if not rel:
            raise ConfigError("path", "name one file of the data directory")
        head = str(repo.head())
        if repo.ls_tree(head, [rel]).get(rel) is None:
            raise looking.missing(repo, rel, head, log=LOG)
        blob = history.blob_at(repo, head, rel)
        if blob.size > most or (blob.lfs and not blob.lfs_object):
            raise ConfigError("path", f"{display_path(rel)} has {blob.size} bytes, more than a resource carries "
                                      f"({most}); the show tool describes it")
        data = blob.lfs_object.read_bytes() if blob.lfs_object else blob.content
        return data, _media_type(rel, data)

    # -- what every tool needs -------------------------------------------------------------------------

    def saved(self) -> GitRepo:
        """The repository, once something is saved in it."""
        if self.repo.head() is None:
            raise ConfigError("git-dir", f"nothing has been saved yet in {self.repo.git_dir}")
        return self.repo

    def path(self, text: object, rev: str | None = None) -> str:
        """A path the agent gave, as the history names it: relative to the data directory (an absolute
        path inside it is taken too), never outside it; '' is the whole data directory."""
        given = str(text).strip()
        if os.path.isabs(given):
            top = os.path.normpath(os.path.abspath(self.repo.data_dir))
            candidate = os.path.normpath(given)
            if candidate != top and not candidate.startswith(top.rstrip("/") + "/"):
                raise ConfigError("path", f"{display_path(given)} is not inside the data directory "
                                          f"{display_path(top)}")
            given = os.path.relpath(candidate, top)
        try:
            rel = history.check_path(given)
        except history.NotFound as exc:
            raise ConfigError("path", exc.message) from None
        return self.repo.named(rel, rev) if rel else rel


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _window(repo: GitRepo, since: object, until: object) -> list[str] | None:
    """`git log`'s limits for since/until (dates as people say them); None when nothing can lie between."""
    limits: list[str] = []
    for name, value in (("since", _text(since)), ("until", _text(until))):
        if value is None:
            continue
        span = revs.parse_date(repo, value) if len(value) <= 100 else None
        if span is None:
            raise ConfigError(name, f"{value[:60]!r} is not a date: give {DATES}")
        moment = span.first if name == "since" else span.last
        if moment in (float("inf"), -1.0):  # after every change, or before the history
            if (name == "since") == (moment == float("inf")):
                return None
            continue
        limits.append(f"--{name}=@{int(moment)} +0000")  # with its zone: git reads a bare @86399 as now
    return limits


def _change(commit: history.Commit, path: str, tags: list[str]) -> dict[str, Any]:
    """One entry of `history`: the change's id, time, kind, message and the paths it touched (under `path`)."""
    changes = commit.changes
    if changes is not None and path:
        changes = [c for c in changes if _under(c.path, path) or (c.old_path and _under(c.old_path, path))]
    item: dict[str, Any] = {"id": commit.sha, "time": clock.iso(commit.when), "kind": _kind(commit, changes),
                            "message": display_text(commit.subject)}
    if changes is None:
        item["counts"] = commit.counts
    else:
        item["paths"] = [{"path": display_path(c.path), "change": c.status,
                          **({"from": display_path(c.old_path)} if c.old_path else {})} for c in changes]
    if tags:
        item["snapshots"] = tags
    return item


def _kind(commit: history.Commit, changes: list[history.Change] | None) -> str:
    """save, rename, delete, restore, merge or conflict."""
    op = (commit.meta or {}).get("op")
    if op == "restore":
        return "restore"
    if op == "merge" or len(commit.parents) > 1:
        return "merge"
    if commit.conflict:
        return "conflict"
    kinds = {c.status for c in changes} if changes is not None else {k for k, n in commit.counts.items() if n}
    if kinds == {"deleted"}:
        return "delete"
    if kinds == {"renamed"}:
        return "rename"
    return "save"


def _under(name: str, path: str) -> bool:
    return name == path or name.startswith(path.rstrip("/") + "/")


def _media_type(path: str, head: bytes) -> str:
    import mimetypes

    if head and (picture := shown.picture_type(head[: shown.PICTURE_HEAD])):
        return picture
    if path.lower().endswith((".md", ".markdown")):
        return "text/markdown"
    return mimetypes.guess_type(path)[0] or ("application/octet-stream" if b"\0" in head[:8000] else "text/plain")


def _json(data: dict[str, Any]) -> Result:
    return Result(json.dumps(data, indent=2, ensure_ascii=False), data)


def one_line(message: str) -> str:
    """An error as one line an agent reads: secrets removed, nothing that acts on a terminal."""
    return " ".join(display_text(redact(message)).split())


def for_command(settings: Settings) -> Agents:
    """The tools as `committer mcp` serves them: writes through ops/requests.py (the running daemon does
    them when there is one), status as `committer status` reads it."""
    from committer.git.runner import GitRunner
    from committer.ops import requests
    from committer.ops.status import collect_status
    from committer.ops.syncnow import sync_now

    repo = GitRepo.of(settings, GitRunner(settings.git_timeout))
    return Agents(repo, lambda: collect_status(settings), lambda asked: requests.run(settings, asked),
                  sync=lambda wait, seconds: sync_now(settings, wait=wait, timeout=seconds))


def for_daemon(settings: Settings, repo: GitRepo, request: Callable[[Request], Any],
               state: Callable[[], Mapping[str, Any]] | None = None) -> Agents:
    """The tools as the daemon serves them at /mcp: writes and syncs through its main loop (the pages' way);
    `state`: the daemon's own state (else read from the state file)."""
    from committer.ops.state import read_state
    from committer.ops.status import collect_status
    from committer.ops.syncnow import sync_in_daemon

    def sync(wait: bool, seconds: float) -> SyncAnswer:
        return sync_in_daemon(request, state or (lambda: read_state(settings.git_dir)), repo, wait=wait,
                              timeout=seconds)

    return Agents(repo, lambda: collect_status(settings), lambda asked: dict(request(asked).payload), sync=sync)
