"""The `committer` command: parse, load settings, call one service function, map errors to exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from committer.commit import message
from committer.core import clock, logs
from committer.core.errors import CommitterError, ConfigError, redact
from committer.core.settings import (
    Settings,
    config_path,
    load_settings,
    read_config_file,
    require_data_dir,
    require_git_dir,
)
from committer.daemon.service import Daemon
from committer.git.repo import GitRepo, history
from committer.git.setup import check_branch, open_repository
from committer.ops import requests as ops
from committer.ops.lock import COMMAND, InstanceLock
from committer.ops.state import load_parts, read_state, save_parts
from committer.ops.status import collect_status, render_status
from committer.policy.filters import PathFilter

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Keep a versioned, backed-up git history of a directory.",
)

T = TypeVar("T")
RENAMES_SHOWN = 5  # moved files listed under a commit by `log` (all of them up to RENAMES_LISTED with --json)
RENAMES_LISTED = 1000

ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML config file.", show_default=False)]
DataDirOpt = Annotated[str | None, typer.Option("--data-dir", help="Directory to version [/app/data].")]
GitDirOpt = Annotated[
    str | None,
    typer.Option("--git-dir", help="Bare repository, outside the data dir [/app/git/knowledge.git]."),
]
BranchOpt = Annotated[str | None, typer.Option("--branch", help="Branch to commit to [main].")]
RemoteOpt = Annotated[str | None, typer.Option("--remote", help="URL to push to; empty for local history.")]
AppIdOpt = Annotated[
    str | None, typer.Option("--github-app-id", help="GitHub App id (or client id) to push as.", show_default=False)
]
AppInstallationOpt = Annotated[
    str | None, typer.Option("--github-app-installation-id", help="The App's installation id.", show_default=False)
]
AppKeyOpt = Annotated[
    str | None, typer.Option("--github-app-private-key-file", help="The App's private key (PEM).", show_default=False)
]
ApiUrlOpt = Annotated[
    str | None, typer.Option("--github-api-url", help="GitHub's REST API [https://api.github.com].", show_default=False)
]
LogFormatOpt = Annotated[str | None, typer.Option("--log-format", help="auto, console or json [auto].")]
NewBranchOpt = Annotated[
    bool,
    typer.Option("--new-branch", help="Commit to --branch although the repository has history on another branch."),
]
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
    new_branch: NewBranchOpt = False,
    github_app_id: AppIdOpt = None,
    github_app_installation_id: AppInstallationOpt = None,
    github_app_private_key_file: AppKeyOpt = None,
    github_api_url: ApiUrlOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Create the repository and commit what the data directory already holds."""

    def body() -> None:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote,
            log_format=log_format, log_level=log_level,
            github_app_id=github_app_id, github_app_installation_id=github_app_installation_id,
            github_app_private_key_file=github_app_private_key_file, github_api_url=github_api_url,
        )
        if from_remote and adopt:
            raise ConfigError("--from-remote", "cannot be combined with --adopt: choose which side wins")
        if (from_remote or adopt) and not settings.remote:
            raise ConfigError("remote", "--from-remote and --adopt need a remote to take history from")
        require_data_dir(settings)
        require_git_dir(settings)
        check_branch(GitRepo.of(settings), new_branch)
        with InstanceLock(settings.git_dir, role=COMMAND):
            pfilter = PathFilter(settings.data_dir, settings.ignore)
            for stale in GitRepo.of(settings).clear_stale_locks():
                logs.get("committer.cli").warning("stale_lock_removed", path=str(stale))
            repo = open_repository(settings, pfilter, new_branch)
            fresh = repo.head() is None
            if fresh and settings.remote and _side_with_remote(settings, repo, from_remote, adopt):
                typer.echo(f"took {settings.branch} from {redact(settings.remote)} into {settings.data_dir}")
                return
            committer, record = load_parts(settings, repo, pfilter, read_state(settings.git_dir))
            op = "init" if repo.head() is None else ("adopt" if adopt else "reconcile")
            with _Progress(settings.data_dir, enabled=sys.stderr.isatty() and fresh) as bar:
                result = committer.commit([""], op=op, progress=bar.advance)
            repo.sync_index(result.changes.hints())
            result.changes.close()
            save_parts(settings.git_dir, committer, record)  # files the safety rules kept out, for status
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
    from committer.sync.bootstrap import adopt_remote, init_from_remote, remote_has_history

    if not remote_has_history(settings, repo):
        return False
    if from_remote:
        from committer.sync.lfsfetch import checkout_lfs

        checkout_lfs(settings, repo, init_from_remote(settings, repo))
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
    from committer.sync.pusher import Pusher

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
    github_app_id: AppIdOpt = None,
    github_app_installation_id: AppInstallationOpt = None,
    github_app_private_key_file: AppKeyOpt = None,
    github_api_url: ApiUrlOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Push unpushed commits and tags now; exits non-zero with the classified error if it fails."""

    def body() -> None:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote,
            log_format=log_format, log_level=log_level,
            github_app_id=github_app_id, github_app_installation_id=github_app_installation_id,
            github_app_private_key_file=github_app_private_key_file, github_api_url=github_api_url,
        )
        repo = GitRepo.of(settings)
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
        self._bytes = 0

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            total = _tree_bytes(self.root)
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
        self._bytes += size
        if self._bar is not None and (self._files & 255 == 0 or self._files == 1):
            self._flush()

    def _flush(self) -> None:
        self._bar.update(self._task, completed=self._bytes, description=f"committing {self._files} files")

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._flush()
            self._bar.stop()


def _tree_bytes(root: Path) -> int:
    """Bytes of the regular files under root (one lstat each), the progress bar's total."""
    size, stack = 0, [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            size += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return size


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
    pull_interval: Annotated[
        str | None, typer.Option(help="Fetch and pull the remote this often; 0 for never [0].")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Reconcile, commit, push once, then exit.")] = False,
    new_branch: NewBranchOpt = False,
    http: Annotated[
        str | None, typer.Option("--http", help="Serve /healthz, /readyz, /metrics on [HOST]:PORT [off].")
    ] = None,
    github_app_id: AppIdOpt = None,
    github_app_installation_id: AppInstallationOpt = None,
    github_app_private_key_file: AppKeyOpt = None,
    github_api_url: ApiUrlOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Watch the data directory, commit each batch of changes, push."""

    def body() -> int:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote, debounce=debounce,
            max_delay=max_delay, observer=observer, poll_interval=poll_interval, pull_interval=pull_interval,
            log_format=log_format, log_level=log_level, http=http,
            github_app_id=github_app_id, github_app_installation_id=github_app_installation_id,
            github_app_private_key_file=github_app_private_key_file, github_api_url=github_api_url,
        )
        daemon = Daemon(settings, once=once, new_branch=new_branch)
        restore = daemon.install_signal_handlers()
        try:
            return daemon.run()
        finally:
            restore()

    code = _guard(body)
    raise typer.Exit(code)


@app.command()
def pull(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    remote: RemoteOpt = None,
    github_app_id: AppIdOpt = None,
    github_app_installation_id: AppInstallationOpt = None,
    github_app_private_key_file: AppKeyOpt = None,
    github_api_url: ApiUrlOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Fetch the remote branch and bring its commits into the repository and the data directory."""

    def body() -> int:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote,
            log_format=log_format, log_level=log_level,
            github_app_id=github_app_id, github_app_installation_id=github_app_installation_id,
            github_app_private_key_file=github_app_private_key_file, github_api_url=github_api_url,
        )
        _require_repo(settings)
        if not settings.remote:
            raise ConfigError("remote", "no remote is configured; set --remote or COMMITTER_REMOTE")
        running = ops.daemon_running(settings)
        answer = ops.run(settings, "pull", {})
        for item in answer["conflicts"]:
            typer.echo(f"conflict: {item['path']}: kept the local version; the remote's is in {item['copy']}")
        outcome, new = answer["outcome"], (answer["new"] or "")[:12]
        if outcome == "refused":
            typer.echo(f"committer: error: pull refused: {answer['reason']}", err=True)
            return 1
        if outcome == "held":
            typer.echo(f"pull held: {answer['reason']}; run `committer confirm-deletes` to apply it")
            return 1
        typer.echo({
            "up_to_date": "already up to date",
            "ahead": "nothing to pull: the local branch is ahead of the remote",
            "no_remote_branch": f"nothing to pull: {answer['reason']}",
            "fast_forward": f"fast-forwarded to {new}: {answer['written']} written, {answer['deleted']} deleted",
            "merge": f"merged the remote into {new}: {answer['written']} written, {answer['deleted']} deleted",
        }.get(outcome, outcome))
        if answer["sha"] and not running:
            _push_and_report(settings, GitRepo.of(settings))
        return 0

    raise typer.Exit(_guard(body))


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
        _require_repo(settings)
        answer = ops.run(settings, "confirm-deletes", {})
        before = answer.get("before")
        if before is None:
            typer.echo("nothing is held")
        else:
            typer.echo(f"committed the held deletion of {answer['deleted']} file(s) ({before['reason']})")

    _guard(body)


@app.command()
def restore(
    path: Annotated[str, typer.Argument(help="A file or folder of the data directory; . for all of it.")],
    to: Annotated[str, typer.Option("--to", help="A commit, tag, `main@{2 hours ago}` or a date.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would change; change nothing.")
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Put a file or folder back as it was at a revision, as a new audited commit."""

    def body() -> None:
        settings = _settings(config, data_dir=data_dir, git_dir=git_dir, branch=branch,
                             log_format=log_format, log_level=log_level)
        _require_repo(settings)
        rel = _relative(settings, path) if Path(path).is_absolute() else path
        answer = ops.run(settings, "restore", {"path": rel, "rev": to, "dry_run": dry_run})
        for item in answer["actions"]:
            typer.echo(f"{'would ' if dry_run else ''}{item['action']} {item['path']}")
        source = answer["source"][:12]
        if dry_run:
            count = len(answer["actions"])
            typer.echo(f"{count} change(s) to restore {answer['path']} from {to} ({source})")
        elif answer["sha"]:
            typer.echo(f"restored {answer['path']} from {to} ({source}): commit {answer['sha'][:12]}")
        else:
            typer.echo(f"{answer['path']} is already as it was at {to} ({source})")

    _guard(body)


@app.command("snapshot")
def snapshot_command(
    message_text: Annotated[
        str | None, typer.Option("-m", "--message", help="What this snapshot is.")
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Tag name [snapshot-<UTC time>].")] = None,
    list_them: Annotated[bool, typer.Option("--list", help="List the snapshots.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --list: one JSON object per line.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Tag HEAD (an annotated tag, pushed with the next push), or list the snapshots."""
    from committer.ops import snapshot

    def body() -> None:
        settings = _settings(config, data_dir=data_dir, git_dir=git_dir, branch=branch,
                             log_format=log_format, log_level=log_level)
        _require_repo(settings)
        if list_them:
            for item in snapshot.listing(GitRepo.of(settings)):
                typer.echo(json.dumps(item) if as_json else
                           f"{item['tag']}  {item['date']}  {item['commit'][:12]}  {item['message']}")
            return
        if not message_text:
            raise ConfigError("--message", "a snapshot needs a message: -m 'what this is'")
        answer = ops.run(settings, "snapshot", {"message": message_text, "tag": tag})
        typer.echo(f"snapshot {answer['tag']} at {answer['head'][:12]} (pushed with the next push)")

    _guard(body)


@app.command()
def doctor(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    remote: RemoteOpt = None,
    github_app_id: AppIdOpt = None,
    github_app_installation_id: AppInstallationOpt = None,
    github_app_private_key_file: AppKeyOpt = None,
    github_api_url: ApiUrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Check the set-up (git, git-lfs, directories, inotify, remote and token) and say how to fix it."""
    from committer.ops import doctor as checks

    def body() -> int:
        settings = _settings(
            config, data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote,
            github_app_id=github_app_id, github_app_installation_id=github_app_installation_id,
            github_app_private_key_file=github_app_private_key_file, github_api_url=github_api_url,
        )
        report = checks.diagnose(settings)
        typer.echo(json.dumps(report) if as_json else checks.render(report))
        return 0 if report["ok"] else 1

    raise typer.Exit(_guard(body))


@app.command("connect")
def connect_command(
    target: Annotated[str, typer.Argument(metavar="OWNER/REPO", help="The GitHub repository, e.g. acme/notes.")],
    webhook_url: Annotated[
        str | None,
        typer.Option("--webhook-url", help="Register GitHub's push webhook to this URL (the daemon's /webhook).",
                     show_default=False),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    git_dir: GitDirOpt = None,
    branch: BranchOpt = None,
    remote: RemoteOpt = None,
    token_file: Annotated[
        str | None, typer.Option("--token-file", help="File holding the token to use.", show_default=False)
    ] = None,
    github_app_id: AppIdOpt = None,
    github_app_installation_id: AppInstallationOpt = None,
    github_app_private_key_file: AppKeyOpt = None,
    github_api_url: ApiUrlOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Create the private GitHub repository if missing, register the push webhook, write the settings."""
    from committer.core.settings import DEFAULT_CONFIG_FILE
    from committer.ops import doctor as checks
    from committer.ops.connect import connect

    def body() -> int:
        flags: dict[str, object] = dict(
            data_dir=data_dir, git_dir=git_dir, branch=branch, remote=remote, token_file=token_file,
            github_app_id=github_app_id, github_app_installation_id=github_app_installation_id,
            github_app_private_key_file=github_app_private_key_file, github_api_url=github_api_url,
            log_format=log_format, log_level=log_level,
        )
        path = config_path(config, os.environ) or DEFAULT_CONFIG_FILE
        # The file may not exist yet: connect writes it.
        settings = load_settings(read_config_file(path) if path.exists() else {}, os.environ, flags)
        logs.configure(settings.log_format, settings.log_level)
        if webhook_url is not None and not webhook_url.startswith(("https://", "http://")):
            raise ConfigError("--webhook-url", f"expected an http(s) URL, got {webhook_url!r}")
        for line in connect(settings, target, path, webhook_url):
            typer.echo(line)
        written = _settings(str(path), **flags)  # as the daemon will read them
        found = list(checks.remote_checks(written))
        for check in found:
            typer.echo(f"{check.status:<5} {check.name:<12} {check.detail}")
            if check.fix:
                typer.echo(f"{'':18}fix: {check.fix}")
        return 1 if any(check.status == "fail" for check in found) else 0

    raise typer.Exit(_guard(body))


def _require_repo(settings: Settings) -> None:
    require_git_dir(settings)
    if not GitRepo.of(settings).exists():
        raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")


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
                   if as_json else render_status(result))

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
        repo = GitRepo.of(settings)
        if not repo.exists():
            raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
        rel = _relative(settings, path) if path else None
        commits = list(history(repo, rel, max_count))
        moves = repo.renames([sha for sha, _epoch, _text in commits])
        for sha, epoch, text in commits:
            meta = message.parse_trailer(text) or {}
            subject = text.splitlines()[0] if text else ""
            when = clock.iso(epoch)
            renamed = moves.get(sha, [])
            if as_json:
                item: dict[str, Any] = {"sha": sha, "date": when, "subject": subject, "meta": meta,
                        "renamed": [list(pair) for pair in renamed[:RENAMES_LISTED]]}
                if len(renamed) > RENAMES_LISTED:
                    item["renamed_truncated"] = True
                typer.echo(json.dumps(item))
                continue
            typer.echo(f"{sha[:12]}  {when}  {subject}")
            if meta:
                counts = " ".join(f"{k}={meta[k]}" for k in ("added", "modified", "deleted", "renamed")
                                  if meta.get(k))
                extra = " ".join(f"{k}={meta[k]}" for k in ("op", "host", "batch") if meta.get(k))
                typer.echo(f"{'':14}{counts}  {extra}".rstrip())
            for old, new in renamed[:RENAMES_SHOWN]:
                typer.echo(f"{'':14}{old} → {new}")
            if len(renamed) > RENAMES_SHOWN:
                typer.echo(f"{'':14}+{len(renamed) - RENAMES_SHOWN} more moved")

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
    # Only a daemon answers SIGUSR1 (it installs its own handler); a stray one must not kill a command.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    app()
