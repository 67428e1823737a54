"""The `committer` command: parse, load settings, call one service function, map errors to exit codes."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from committer import logs, message
from committer.daemon import Daemon, open_repository
from committer.errors import CommitterError, ConfigError, redact
from committer.filters import PathFilter
from committer.gitrepo import GitRepo, history
from committer.guard import Hold
from committer.pipeline import Pipeline
from committer.settings import Settings, config_path, load_settings, read_config_file, require_data_dir
from committer.state import CONFIRM_REQUEST, InstanceLock, holder_pid, read_state, state_dir, write_state

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Keep a versioned, backed-up git history of a directory.",
)

T = TypeVar("T")

ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML config file.", show_default=False)]
DataDirOpt = Annotated[str | None, typer.Option("--data-dir", help="Directory to version [/app/data].")]
GitDirOpt = Annotated[
    str | None,
    typer.Option("--git-dir", help="Bare repository, outside the data dir [/app/git/knowledge.git]."),
]
BranchOpt = Annotated[str | None, typer.Option("--branch", help="Branch to commit to [main].")]
RemoteOpt = Annotated[str | None, typer.Option("--remote", help="URL to push to; empty for local history.")]
LogFormatOpt = Annotated[str | None, typer.Option("--log-format", help="auto, console or json [auto].")]
LogLevelOpt = Annotated[str | None, typer.Option("--log-level", help="debug, info, warning, error [info].")]


def _fail(exc: CommitterError) -> typer.Exit:
    typer.echo(f"committer: error: {redact(exc.message)}", err=True)
    return typer.Exit(exc.exit_code)


def _guard(action: Callable[[], T]) -> T:
    """Run a command body; expected failures become one line on stderr and their exit code."""
    try:
        return action()
    except CommitterError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _settings(config: str | None, **flags: object) -> Settings:
    path = config_path(config, os.environ)
    file_values = read_config_file(path) if path else {}
    settings = load_settings(file_values, os.environ, flags)
    logs.configure(settings.log_format, settings.log_level)
    return settings


@app.command()
def init(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    remote: RemoteOpt = None,
    from_remote: Annotated[
        bool,
        typer.Option("--from-remote", help="The remote wins: check its files out into the empty data dir."),
    ] = False,
    adopt: Annotated[
        bool,
        typer.Option("--adopt", help="Both: commit the local content on top of the remote history."),
    ] = False,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Create the repository and commit what the data directory already holds."""

    def body() -> None:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote,
            log_format=log_format, log_level=log_level,
        )
        if from_remote and adopt:
            raise ConfigError("--from-remote", "cannot be combined with --adopt: choose which side wins")
        if (from_remote or adopt) and not settings.remote:
            raise ConfigError("remote", "--from-remote and --adopt need a remote to take history from")
        require_data_dir(settings)
        with InstanceLock(settings.git_dir):
            pfilter = PathFilter(settings.data_dir, settings.ignore)
            repo = open_repository(settings, pfilter)
            fresh = repo.head() is None
            if fresh and settings.remote and _side_with_remote(settings, repo, from_remote, adopt):
                typer.echo(f"took {settings.branch} from {redact(settings.remote)} into {settings.data_dir}")
                return
            pipeline = Pipeline(settings, repo, pfilter)
            op = "init" if repo.head() is None else ("adopt" if adopt else "reconcile")
            with _Progress(settings.data_dir, enabled=sys.stderr.isatty() and fresh) as bar:
                result = pipeline.commit([""], op=op, progress=bar.advance)
            repo.sync_index()
            files = result.changes.counts.total
            where = f"{settings.git_dir} ({settings.branch})"
            if result.sha:
                typer.echo(f"committed {files} file{'s' if files != 1 else ''} to {where}: {result.sha[:12]}")
            else:
                typer.echo(f"{where} is up to date with {settings.data_dir}")
            if settings.remote:
                _push_and_report(settings, repo)

    _guard(body)


def _side_with_remote(settings: Settings, repo: GitRepo, from_remote: bool, adopt: bool) -> bool:
    """For a new repository whose remote has history: take it (True), adopt it, or refuse."""
    from committer.pusher import adopt_remote, init_from_remote, remote_has_history

    if not remote_has_history(settings, repo):
        return False
    if from_remote:
        init_from_remote(settings, repo)
        return True
    if adopt:
        adopt_remote(settings, repo)
        return False
    raise ConfigError(
        "remote",
        f"{redact(settings.remote)} already has history on {settings.branch!r}; refusing to overwrite it. "
        "Use --from-remote (the remote wins, the data directory must be empty) or --adopt "
        "(the local files become a new commit on top of the remote history)",
    )


def _push_and_report(settings: Settings, repo: GitRepo) -> None:
    from committer.pusher import Pusher

    result = Pusher(settings, repo).push_now()
    if result["pushed"]:
        shown = redact(settings.remote)
        typer.echo(f"pushed {result['commits']} commit(s) to {shown} in {result['seconds']}s")
    else:
        typer.echo(f"{redact(settings.remote)} is up to date")


@app.command()
def push(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    remote: RemoteOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Push unpushed commits and tags now; exits non-zero with the classified error if it fails."""

    def body() -> None:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote,
            log_format=log_format, log_level=log_level,
        )
        repo = GitRepo(settings.git_dir, settings.data_dir, settings.branch)
        if not repo.exists():
            raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
        _push_and_report(settings, repo)

    _guard(body)


class _Progress:
    """A progress bar over files and bytes for a first commit on a terminal."""

    def __init__(self, root: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.root = root
        self._bar: Any = None
        self._task: Any = None
        self._files = 0

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            total = sum(
                os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(self.root) for f in fs
                if os.path.isfile(os.path.join(d, f))
            )
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                transient=True,
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task("committing", total=total)
        return self

    def advance(self, size: int) -> None:
        self._files += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=size, description=f"committing {self._files} files")

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@app.command()
def run(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    remote: RemoteOpt = None,
    debounce: Annotated[str | None, typer.Option(help="Quiet time that closes a batch [2s].")] = None,
    max_delay: Annotated[
        str | None, typer.Option(help="Longest a batch waits after its first event [30s].")
    ] = None,
    observer: Annotated[str | None, typer.Option(help="auto, inotify or poll [auto].")] = None,
    poll_interval: Annotated[
        str | None, typer.Option(help="Scan interval of the poll observer [5s].")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Reconcile, commit, push once, then exit.")] = False,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Watch the data directory, commit each batch of changes, push."""

    def body() -> int:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote, debounce=debounce,
            max_delay=max_delay, observer=observer, poll_interval=poll_interval,
            log_format=log_format, log_level=log_level,
        )
        daemon = Daemon(settings, once=once)
        restore = daemon.install_signal_handlers()
        try:
            return daemon.run()
        finally:
            restore()

    code = _guard(body)
    raise typer.Exit(code)


@app.command("confirm-deletes")
def confirm_deletes(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Commit a held mass deletion (the deletions the guard kept out of history)."""

    def body() -> None:
        settings = _settings(config, data_dir=data_dir, git_dir=git_dir, branch=branch,
                             log_format=log_format, log_level=log_level)
        repo = GitRepo(settings.git_dir, settings.data_dir, settings.branch)
        if not repo.exists():
            raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
        pid = holder_pid(settings.git_dir)
        if pid is not None and pid > 0:
            state = _ask_daemon_to_confirm(settings, pid)
        else:
            state = _confirm_here(settings, repo)
        before, after = state.get("before"), state.get("held")
        if before is None:
            typer.echo("nothing is held")
        elif after is None:
            typer.echo(f"committed the held deletion of {before['count']} file(s) ({before['reason']})")
        else:
            raise CommitterError(f"the hold is still in place: {state.get('last_error') or 'see the logs'}")

    _guard(body)


def _ask_daemon_to_confirm(settings: Settings, pid: int) -> dict[str, Any]:
    import signal
    import uuid

    before = read_state(settings.git_dir).get("held")
    token = str(uuid.uuid4())
    request = state_dir(settings.git_dir) / CONFIRM_REQUEST
    request.write_text(token)
    try:
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = read_state(settings.git_dir)
            if state.get("confirmed") == token:
                return {**state, "before": before}
            time.sleep(0.05)
    finally:
        request.unlink(missing_ok=True)
    raise CommitterError(f"the daemon (pid {pid}) did not answer within 60 s; see its logs")


def _confirm_here(settings: Settings, repo: GitRepo) -> dict[str, Any]:
    with InstanceLock(settings.git_dir):
        state = read_state(settings.git_dir)
        hold = Hold.load(state.get("hold_record"))
        pfilter = PathFilter(settings.data_dir, settings.ignore)
        pipeline = Pipeline(settings, open_repository(settings, pfilter), pfilter, hold)
        before = hold.status() if hold else None
        pipeline.confirm_deletes()
        repo.sync_index()
        state.update(held=None, hold_record=None)
        write_state(settings.git_dir, state)
        return {"before": before, "held": None}


STATUS_KEYS = (
    "data_dir", "git_dir", "branch", "remote", "head", "last_commit_at", "pending_commits",
    "oldest_pending_at", "last_push_at", "last_push_seconds", "consecutive_failures", "last_error",
    "held", "held_files", "running", "pid",
)


def collect_status(settings: Settings) -> dict[str, Any]:
    """Every status key, null where unknown; works with or without a running daemon."""
    status: dict[str, Any] = dict.fromkeys(STATUS_KEYS)
    status.update(
        data_dir=str(settings.data_dir),
        git_dir=str(settings.git_dir),
        branch=settings.branch,
        remote=redact(settings.remote) or None,
        held_files=[],
        running=False,
    )
    repo = GitRepo(settings.git_dir, settings.data_dir, settings.branch)
    if not repo.exists():
        return status
    last = repo.last_commit()
    if last:
        status["head"], status["last_commit_at"] = last
    state = read_state(settings.git_dir)
    pid = holder_pid(settings.git_dir)
    status["running"] = pid is not None
    status["pid"] = pid if pid and pid > 0 else None
    for key in ("held", "held_files", "last_error"):
        if state.get(key) is not None:
            status[key] = state[key]
    if settings.remote:
        from committer.pusher import Pusher

        fresh = Pusher(settings, repo).snapshot()
        kept = state.get("push") or {}
        for key in ("pending_commits", "oldest_pending_at", "last_push_at", "last_push_seconds"):
            status[key] = fresh.get(key)
        status["consecutive_failures"] = kept.get("consecutive_failures", fresh["consecutive_failures"])
        if status["last_error"] is None:
            status["last_error"] = kept.get("last_error")
    return status


def _ago(iso: str | None) -> str:
    if not iso:
        return "never"
    try:
        then = time.mktime(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return iso
    seconds = max(0, int(time.time() - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _human_status(status: dict[str, Any]) -> str:
    rows = [
        ("data dir", status["data_dir"]),
        ("git dir", status["git_dir"]),
        ("branch", status["branch"]),
        ("remote", status["remote"] or "none (local history only)"),
        ("head", (status["head"] or "no commits yet")[:12]),
        ("last commit", _ago(status["last_commit_at"])),
        ("daemon", f"running (pid {status['pid']})" if status["running"] else "not running"),
    ]
    if status["remote"]:
        rows.append(("pending", f"{status['pending_commits'] or 0} commits"))
        rows.append(("last push", _ago(status["last_push_at"])))
    if status["last_error"]:
        err = status["last_error"]
        rows.append(("last error", f"{err.get('kind')}: {err.get('message')}"))
    if status["held"]:
        held = status["held"]
        rows.append(("HOLD", f"{held['count']} deletion(s) held since {held['since']}: {held['reason']}; "
                             "release with `committer confirm-deletes`, or bring the files back"))
    for item in status["held_files"] or []:
        rows.append(("held", f"{item['path']} ({item['reason']})"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


@app.command()
def status(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    remote: RemoteOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with every key.")] = False,
) -> None:
    """Show the repository, the last commit and push, holds and errors, and whether a daemon runs."""

    def body() -> None:
        settings = _settings(config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote)
        result = collect_status(settings)
        typer.echo(json.dumps(result, indent=None if not sys.stdout.isatty() else 2)
                   if as_json else _human_status(result))

    _guard(body)


@app.command("log")
def log_command(
    path: Annotated[str | None, typer.Argument(help="A file or folder in the data directory.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    max_count: Annotated[int, typer.Option("-n", "--max-count", help="How many commits.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """History of the directory or of one path, with the BM-Meta trailer decoded."""

    def body() -> None:
        settings = _settings(config, data_dir=data_dir, git_dir=git_dir, branch=branch)
        repo = GitRepo(settings.git_dir, settings.data_dir, settings.branch)
        if not repo.exists():
            raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
        rel = _relative(settings, path) if path else None
        for sha, epoch, text in history(repo, rel, max_count):
            meta = message.parse_trailer(text) or {}
            subject = text.splitlines()[0] if text else ""
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
            if as_json:
                typer.echo(json.dumps({"sha": sha, "date": when, "subject": subject, "meta": meta}))
                continue
            typer.echo(f"{sha[:12]}  {when}  {subject}")
            if meta:
                counts = " ".join(f"{k}={meta[k]}" for k in ("added", "modified", "deleted", "renamed")
                                  if meta.get(k))
                extra = " ".join(f"{k}={meta[k]}" for k in ("op", "host", "batch") if meta.get(k))
                typer.echo(f"{'':14}{counts}  {extra}".rstrip())

    _guard(body)


def _relative(settings: Settings, path: str) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.relative_to(settings.data_dir).as_posix()
        except ValueError:
            inside = f"{path} is not inside the data directory {settings.data_dir}"
            raise ConfigError("path", inside) from None
    return candidate.as_posix().strip("/")


def main() -> None:
    """Entry point of the `committer` executable."""
    app()
