"""What `committer status` shows: every key, with or without a running daemon."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from committer.core import clock
from committer.core.errors import redact
from committer.core.paths import display_path, display_text
from committer.core.secret import webhook_secret
from committer.core.settings import Settings, shown
from committer.git.repo import GitRepo
from committer.ops.lock import holder_pid
from committer.ops.state import read_state
from committer.sync import backupcheck
from committer.sync.conflicts import open_conflicts

STATUS_KEYS = (
    "data_dir", "git_dir", "branch", "remote", "head", "last_commit_at", "pending_commits",
    "oldest_pending_at", "last_push_at", "last_push_seconds", "consecutive_failures", "last_error",
    "held", "held_files", "running", "pid", "repo_size_bytes", "objects", "last_pull_at", "conflicts", "pull",
    "outbox", "oldest_undelivered_at", "last_delivery_error", "settings", "unwritable_paths", "found",
    "repository", "verified",
)


def collect_status(settings: Settings, found: dict[str, object] | None = None) -> dict[str, Any]:
    """Every status key, null where unknown; works with or without a running daemon. `found`: how the
    command found the repository (core/discover.py); `repository`: whether the git dir holds one."""
    status: dict[str, Any] = dict.fromkeys(STATUS_KEYS)
    status.update(
        found=found,
        repository=False,
        data_dir=str(settings.data_dir),
        git_dir=str(settings.git_dir),
        branch=settings.branch,
        remote=redact(settings.remote) or None,
        held_files=[],
        running=False,
        conflicts=[],
        unwritable_paths=[],
        settings={name: {**item, "from": "this command"} for name, item in shown(settings).items()},
    )
    repo = GitRepo.of(settings)
    if not repo.exists():
        return status
    status["repository"] = True
    size = repo.size()
    status["repo_size_bytes"], status["objects"] = size["repo_size_bytes"], size["objects"]
    last = repo.last_commit()
    if last:
        status["head"], status["last_commit_at"] = last
    state = read_state(settings.git_dir)
    pid = holder_pid(settings.git_dir)
    status["running"] = pid is not None
    status["pid"] = pid if pid and pid > 0 else None
    settings = _effective(settings, state if status["running"] else {}, status)
    for key in ("held", "held_files", "last_error"):
        if state.get(key) is not None:
            status[key] = state[key]
    status["verified"] = backupcheck.last(settings.git_dir)  # the last `verify`, the daemon's or a command's
    _pull_status(status, state.get("pull") or {})
    status["conflicts"] = open_conflicts(repo, status["head"], status["conflicts"])
    _events_status(status, settings, state)
    if settings.remote:
        from committer.sync.pusher import Pusher

        fresh = Pusher(settings, repo).snapshot()
        kept = state.get("push") or {}
        for key in ("pending_commits", "oldest_pending_at", "last_push_at", "last_push_seconds"):
            status[key] = fresh.get(key)
        status["consecutive_failures"] = kept.get("consecutive_failures", fresh["consecutive_failures"])
        if status["last_error"] is None:
            status["last_error"] = kept.get("last_error")
    _what_to_do(status, settings)
    _escape_paths(status)
    return status


def _escape_paths(status: dict[str, Any]) -> None:
    """Names as text (`bad\\xff.md`): the state file keeps them as the filesystem has them, and JSON or a
    terminal gets no lone surrogate or control character."""
    for key, fields in (("held_files", ("path",)), ("conflicts", ("path", "copy")), ("unwritable_paths", ("path",))):
        status[key] = [{**item, **{f: display_path(item[f]) for f in fields if isinstance(item.get(f), str)}}
                       if isinstance(item, dict) else item for item in status[key] or []]
    held = status["held"]
    if isinstance(held, dict) and isinstance(held.get("paths"), list):
        status["held"] = {**held, "paths": [display_path(p) if isinstance(p, str) else p for p in held["paths"]]}


def _what_to_do(status: dict[str, Any], settings: Settings) -> None:
    """A push refused because the remote moved ahead says what brings it back (git's own words do not)."""
    error = status["last_error"]
    if not isinstance(error, dict) or error.get("kind") != "non_fast_forward":
        return
    if status["pending_commits"] == 0:  # pushed since (a pull merged and pushed): the refusal is over
        status["last_error"] = None
        return
    if (status["pull"] or {}).get("diverged"):
        status["last_error"] = {**error, "hint": DIVERGED_HINT}
        return
    automatic = settings.pull_interval > 0 or (bool(settings.http) and webhook_secret(settings.webhook_secret_file))
    if automatic:
        hint = "the remote has commits this repository lacks; the daemon pulls and merges them, then pushes again"
    else:
        hint = ("the remote has commits this repository lacks and nothing pulls them here: run `committer pull`, "
                "or set pull_interval (or the webhook) so the daemon pulls by itself")
    status["last_error"] = {**error, "hint": hint}


DIVERGED_HINT = ("pull_policy is ff-only, so nothing is merged and nothing pushed: `committer pull --pull-policy "
                 "merge` merges once, `committer pull --pull-policy pull-request` proposes the local commits as a pull "
                 "request, `allow_non_ff` overwrites the remote (see docs/pulling.md#pull-policies)")


def _effective(settings: Settings, state: dict[str, Any], status: dict[str, Any]) -> Settings:
    """The settings status reports on: the running daemon's (from its state file) for every setting this
    command was not given, so `status` without flags shows the remote the daemon pushes to."""
    own = shown(settings)
    daemon = state.get("settings") if isinstance(state.get("settings"), dict) else None
    if not daemon:
        return settings
    merged: dict[str, Any] = {}
    for name, item in own.items():
        theirs = daemon.get(name)
        if item["source"] == "default" and isinstance(theirs, dict):
            merged[name] = {**theirs, "from": "the running daemon"}
        else:
            merged[name] = {**item, "from": "this command"}
    status["settings"] = merged
    remote = merged["remote"]
    if remote["from"] == "the running daemon" and remote["value"]:
        status["remote"] = remote["value"]
        # Only its pushed refs are read (named by the URL without credentials); the redacted URL serves.
        return dataclasses.replace(settings, remote=str(remote["value"]))
    return settings


def _pull_status(status: dict[str, Any], pulled: dict[str, Any]) -> None:
    """The pull side: last pull, conflict copies, a held pull, a refused (forced) remote update."""
    status["pull"] = pulled or None
    status["last_pull_at"] = pulled.get("last_pull_at")
    status["conflicts"] = list(pulled.get("conflicts") or [])
    status["unwritable_paths"] = list(pulled.get("unwritable") or [])
    if status["held"] is None and pulled.get("held"):
        status["held"] = pulled["held"]
    refused = pulled.get("refused")
    shown = status["last_error"] or {}
    if refused and shown.get("kind") in (None, "non_fast_forward"):
        status["last_error"] = {"kind": "git_conflict", "message": refused.get("reason"), "at": refused.get("at")}
    diverged = pulled.get("diverged")
    if isinstance(diverged, dict) and not refused and shown.get("kind") in (None, "non_fast_forward"):
        status["last_error"] = {"kind": "diverged", "message": diverged.get("reason"), "at": diverged.get("since"),
                                "hint": DIVERGED_HINT}


def _events_status(status: dict[str, Any], settings: Settings, state: dict[str, Any]) -> None:
    """The outbox: events waiting for a receiver, the oldest one's time, the last delivery error."""
    from committer.ops import notify  # its receivers bring httpx in: only when an outbox may be there

    found = notify.status(settings, state)
    status["outbox"], status["oldest_undelivered_at"] = found["outbox"], found["oldest_at"]
    status["last_delivery_error"] = found["last_error"]


def _remote_row(status: dict[str, Any]) -> str:
    if not status["remote"]:
        return "none (local history only)"
    item = (status.get("settings") or {}).get("remote") or {}
    if item.get("from") == "the running daemon":
        return f"{status['remote']} (the running daemon's, from {item.get('source')})"
    return str(status["remote"])


def render_status(status: dict[str, Any]) -> str:
    """A short aligned summary for people, with relative times."""
    found = status.get("found") or {}
    rows = [("found", str(found["text"]))] if found.get("text") else []
    rows += [
        ("data dir", status["data_dir"] + ("" if Path(status["data_dir"]).is_dir() else " (does not exist)")),
        ("git dir", status["git_dir"] + ("" if status.get("repository", True) else " (no repository yet)")),
        ("branch", status["branch"]),
        ("remote", _remote_row(status)),
        ("head", status["head"][:12] if status["head"] else "no commits yet"),
        ("last commit", clock.ago(status["last_commit_at"])),
        ("daemon", f"running (pid {status['pid']})" if status["running"] else "not running"),
    ]
    if status["remote"]:
        rows.append(("pending", f"{status['pending_commits'] or 0} commits"))
        rows.append(("last push", clock.ago(status["last_push_at"])))
    if status["remote"] and status.get("verified"):
        rows.append(("verified", _verified_row(status["verified"])))
    if status["last_pull_at"] or status["conflicts"]:
        rows.append(("last pull", clock.ago(status["last_pull_at"])))
    for item in (status["conflicts"] or [])[-5:]:
        whose = "the other" if item.get("kind") == "bisync" else "the remote's"  # an rclone bisync conflict
        theirs = f"{whose} version is in {item.get('copy')!r}" if item.get("copy") else item.get("why")
        rows.append(("conflict", f"{item.get('path')}: {theirs}"))
    pulled = status["pull"] or {}
    if isinstance(pulled.get("diverged"), dict):
        rows.append(("DIVERGED", f"{pulled['diverged'].get('reason')} (since {pulled['diverged'].get('since')})"))
        if not (status["last_error"] or {}).get("hint"):
            rows.append(("what to do", DIVERGED_HINT))
    for item in (pulled.get("pull_requests") or [])[-5:]:
        if isinstance(item, dict) and item.get("state") in ("open", "no_pull_requests", "pushed", "pushing"):
            where = item.get("url") or ("the host has no pull requests" if item.get("state") == "no_pull_requests"
                                        else "not opened yet")
            rows.append(("pull request", f"{where} (branch {item.get('branch')}, {item.get('state')})"))
    for item in status["unwritable_paths"] or []:
        rows.append(("unwritable", f"{item.get('path')}: {item.get('reason')} (kept in git, not in the data dir)"))
    if status["last_error"]:
        err = status["last_error"]
        rows.append(("last error", f"{err.get('kind')}: {err.get('message')}"))
        if err.get("hint"):
            rows.append(("what to do", str(err["hint"])))
    if status["outbox"] is not None:
        waiting = f"{status['outbox']} event(s) waiting for delivery"
        if status["oldest_undelivered_at"]:
            waiting += f", the oldest made {clock.ago(status['oldest_undelivered_at'])}"
        rows.append(("outbox", waiting))
    if status["last_delivery_error"]:
        err = status["last_delivery_error"]
        rows.append(("delivery error", f"{err.get('receiver')}: {err.get('message')} ({clock.ago(err.get('at'))})"))
    if status["held"] and status["held"].get("reason") == "pull_max_delete":
        held = status["held"]
        rows.append(("HOLD", f"a pull would delete {held['count']} file(s) (held since {held['since']}); "
                             "apply it with `committer confirm-deletes`"))
    elif status["held"] and status["held"].get("reason") == "project_missing":
        rows.append(("HOLD", f"the project's folder is missing since {status['held']['since']}: nothing is "
                             "committed, its history is kept; bring the folder back, or exclude the project"))
    elif status["held"]:
        held = status["held"]
        back = ("write them back with `committer put-back`" if held["reason"] == "max_delete"
                else "bring the files back")
        rows.append(("HOLD", f"{held['count']} deletion(s) held since {held['since']}: {held['reason']}; "
                             f"release with `committer confirm-deletes`, or {back}"))
    for item in status["held_files"] or []:
        rows.append(("held", f"{item['path']} ({item['reason']})"))
    width = max(len(k) for k, _ in rows)
    # One line a row, whatever a folder's name holds (a found committer.toml's, the data dir's).
    return "\n".join(f"{k.ljust(width)}  {_one_line(v)}" for k, v in rows)


def _verified_row(record: dict[str, Any]) -> str:
    """The last verify of the remote copy, in a line."""
    if record.get("ok"):
        return f"{clock.ago(record.get('at'))}: restorable ({record.get('commit', '')[:12]})"
    ok = f"; last verified {clock.ago(record['last_ok_at'])}" if record.get("last_ok_at") else ""
    return f"FAILED {clock.ago(record.get('at'))} ({record.get('reason')}): {record.get('message')}{ok}"


def _one_line(value: str) -> str:
    """A row's value with no control character acting on the terminal and no line break."""
    return display_text(value).replace("\n", "\\x0a").replace("\t", " ")


def collect_projects(settings: Settings, found: dict[str, object] | None = None) -> dict[str, Any]:
    """`status` without --project in the per-project layout: the daemon (if one runs) and every project,
    each as its own state file says (`status --project NAME` shows one whole)."""
    from committer.core.projects import for_project, known

    pid = holder_pid(settings.git_dir)
    state = read_state(settings.git_dir)
    listed = dict(state.get("projects") or {}) if pid is not None else {}
    projects: dict[str, Any] = {}
    for name in sorted(set(listed) | set(known(settings))):
        own = read_state(for_project(settings, name).git_dir)
        item = listed.get(name) or {"head": own.get("head"), "held": own.get("held")}
        projects[name] = {**item, "held": item.get("held") or own.get("held")}
    return {"layout": settings.layout, "data_dir": str(settings.data_dir), "git_dir": str(settings.git_dir),
            "running": pid is not None, "pid": pid if pid and pid > 0 else None, "found": found,
            "repository": True, "projects": projects}


def render_projects(status: dict[str, Any]) -> str:
    """The per-project overview, one row a project."""
    rows = [("data dir", display_path(status["data_dir"])), ("git dir", display_path(status["git_dir"])),
            ("daemon", f"running (pid {status['pid']})" if status["running"] else "not running")]
    for name, item in status["projects"].items():
        if item.get("failed"):
            rows.append((name, f"not versioned: {item['failed']}"))
            continue
        held = item.get("held")
        what = f"head {str(item.get('head') or 'none')[:12]}"
        if item.get("pending_commits"):
            what += f", {item['pending_commits']} commit(s) to push"
        if held and held.get("reason") == "project_missing":
            what += f"; HOLD: the folder is missing since {held.get('since')} (its history is kept)"
        elif held:
            what += f"; HOLD: {held.get('count')} deletion(s) held ({held.get('reason')})"
        rows.append((name, what))
    rows.append(("", "one project: committer status --project NAME"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {_one_line(v)}" for k, v in rows)
