"""The commands that change something: init, run, push, pull, confirm-deletes, restore, snapshot, connect.
Each loads its settings, calls one service function and says what happened in a line or two."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

from committer.cli.app import Argument, Option, Options, command, echo
from committer.cli.progress import shown_steps
from committer.core import discover, logs
from committer.core.errors import ConfigError, redact
from committer.core.paths import display_path
from committer.core.places import require_data_dir, require_git_dir
from committer.core.settings import Settings, policy
from committer.git import cleanstop
from committer.git.repo import GitRepo
from committer.git.setup import check_branch, open_repository
from committer.ops import requests as ops
from committer.ops.kinds import ConfirmDeletes, PullNow, Restore, Snapshot
from committer.ops.lock import COMMAND, InstanceLock
from committer.ops.state import load_parts, read_state, save_parts
from committer.policy.filters import PathFilter

NewBranch = Annotated[
    bool, Option("--new-branch", help="Commit to --branch although the repository has history on another branch.")
]


def require_repo(settings: Settings) -> None:
    """A repository must be there (a command that only reads or asks the daemon makes none)."""
    from committer.core.projects import require_project

    require_project(settings)  # per-project layout: the folder of the repositories is none of them
    require_git_dir(settings)
    if not GitRepo.of(settings).exists():
        raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")


def relative(settings: Settings, path: str) -> str:
    """A path as the data directory names it (`.` for the whole of it). Typed inside the data directory, a
    relative path is relative to the current directory, as git reads it (`plan.md` in `notes/` is
    `notes/plan.md`); typed anywhere else, to the data directory. An absolute one, or one whose `..` leads
    out, must lie inside it."""
    top = Path(os.path.normpath(os.path.abspath(settings.data_dir)))
    tops = [top, _real(top)]
    here = discover.current_directory()
    inside_here = here is not None and any(_under(here, start) is not None for start in tops)
    candidate = Path(os.path.normpath((here if here is not None and inside_here else top) / path))
    for start in tops:
        inside = _under(candidate, start)
        if inside is not None:
            return inside.as_posix()
    raise ConfigError("path", f"{display_path(path)} is not inside the data directory {display_path(str(top))}")


def typed_in(data_dir: Path) -> str:
    """The folder of the data directory the command is typed in (`notes`), "" at its top or outside it: the
    folder a relative path is read from, and the one names are shown from."""
    top = Path(os.path.normpath(os.path.abspath(data_dir)))
    here = discover.current_directory()
    if here is None:
        return ""
    inside = next((found for found in (_under(here, start) for start in (top, _real(top))) if found), None)
    return "" if inside is None or inside == Path(".") else inside.as_posix()


def as_typed(rel: str, folder: str) -> str:
    """A path of the data directory as it would be typed in `folder` (`../plan.md` from `notes`)."""
    return os.path.relpath(rel, folder) if folder else rel


def _under(path: Path, top: Path) -> Path | None:
    """`path` relative to `top` (`.` for `top` itself); None when it lies outside."""
    try:
        return path.relative_to(top)
    except ValueError:
        return None


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


@command(remote=True, commits=True)
def init(
    opts: Options,
    from_remote: Annotated[
        bool, Option("--from-remote", help="The remote wins: check its files out into the empty data dir.")
    ] = False,
    adopt: Annotated[
        bool, Option("--adopt", help="Both: commit the local content on top of the remote history.")
    ] = False,
    new_branch: NewBranch = False,
) -> None:
    """Create the repository and commit what the data directory already holds."""
    from committer.cli.progress import Progress

    settings = opts.settings()
    if from_remote and adopt:
        raise ConfigError("--from-remote", "cannot be combined with --adopt: choose which side wins")
    if (from_remote or adopt) and not settings.remote:
        raise ConfigError("remote", "--from-remote and --adopt need a remote to take history from")
    require_data_dir(settings)
    require_git_dir(settings)
    check_branch(GitRepo.of(settings), new_branch)
    with InstanceLock(settings.git_dir, role=COMMAND):
        pfilter = PathFilter(settings.data_dir, settings.ignore)
        known = cleanstop.still_known(GitRepo.of(settings))  # the stamp goes before anything writes
        for stale in GitRepo.of(settings).clear_stale_locks():
            logs.get(__name__).warning("stale_lock_removed", path=str(stale))
        repo = open_repository(settings, pfilter, new_branch)
        fresh = repo.head() is None
        with shown_steps("fetching"):
            took = fresh and settings.remote and _side_with_remote(settings, repo, from_remote, adopt)
        if took:
            echo(f"took {settings.branch} from {redact(settings.remote)} into {settings.data_dir}")
            return
        committer, record = load_parts(settings, repo, pfilter, read_state(settings.git_dir))
        op = "init" if repo.head() is None else ("adopt" if adopt else "reconcile")
        with Progress(settings.data_dir, enabled=sys.stderr.isatty() and fresh) as bar:
            result = committer.commit([""], op=op, progress=bar.advance)
        repo.sync_index(result.changes.hints())
        result.changes.close()
        save_parts(settings.git_dir, committer, record)  # files the safety rules kept out, for status
        if known:
            cleanstop.leave(repo)
        files = result.changes.counts.total
        where = f"{settings.git_dir} ({settings.branch})"
        if result.sha:
            echo(f"committed {files} file{'s' if files != 1 else ''} to {where}: {result.sha[:12]}")
        else:
            echo(f"{where} is up to date with {settings.data_dir}")
        if settings.remote:
            _push_and_report(settings, repo)


def _side_with_remote(settings: Settings, repo: GitRepo, from_remote: bool, adopt: bool) -> bool:
    """For a new repository whose remote has history: take it (True), adopt it, or refuse."""
    from committer.sync.bootstrap import adopt_remote, init_from_remote, remote_has_history
    from committer.sync.lfsfetch import checkout_lfs

    if not remote_has_history(settings, repo):
        return False
    if from_remote:
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
    from committer.core.errors import CommitterError
    from committer.ops.notify import Notify
    from committer.sync.errors import HINTS, PushError
    from committer.sync.pusher import Pusher

    notify = Notify.for_command(settings)  # git_push / push_failed wait in the outbox for the daemon
    try:
        with shown_steps("pushing"):
            result = Pusher(settings, repo, emit=notify.emit).push_now()
    except PushError as exc:  # tried once: say what happens next, not the daemon's "retrying with backoff"
        later = ("the running daemon tries again by itself" if ops.daemon_running(settings)
                 else "run `committer push` again later")
        raise CommitterError(f"push failed ({exc.kind}): {exc.detail} ({HINTS[exc.kind].split('; retrying')[0]}); "
                             f"nothing was pushed: {later}") from None
    finally:
        notify.stop(0.0)
    if result["pushed"]:
        echo(f"pushed {result['commits']} commit(s) to {redact(settings.remote)} in {result['seconds']}s")
    else:
        echo(f"{redact(settings.remote)} is up to date")


@command(remote=True)
def push(opts: Options) -> None:
    """Push unpushed commits and tags now; exits non-zero with the classified error if it fails."""
    settings = opts.settings()
    repo = GitRepo.of(settings)
    if not repo.exists():
        raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
    _push_and_report(settings, repo)


@command(remote=True, events=True, commits=True)
def run(
    opts: Options,
    once: Annotated[bool, Option("--once", help="Reconcile, commit, push once, then exit.")] = False,
    new_branch: NewBranch = False,
) -> int:
    """Watch the data directory, commit each batch of changes, push."""
    from committer.daemon.service import Daemon
    from committer.daemon.which import per_project_daemon

    settings = opts.settings()
    daemon = per_project_daemon(settings, once, new_branch) or Daemon(settings, once=once, new_branch=new_branch)
    restore_signals = daemon.install_signal_handlers()
    try:
        return daemon.run()
    finally:
        restore_signals()


@command(remote=True, events=True, commits=True)
def pull(opts: Options) -> int:
    """Fetch the remote branch and bring its commits into the repository and the data directory."""
    settings = opts.settings()
    require_repo(settings)
    if not settings.remote:
        raise ConfigError("remote", "no remote is configured; set --remote or COMMITTER_REMOTE")
    running = ops.daemon_running(settings)
    given = "flag" in (settings.source_of("pull_policy"), settings.source_of("pull_merge"))
    with shown_steps("pulling"):
        answer = ops.run(settings, PullNow(policy(settings) if given else ""))
    for item in answer["conflicts"]:
        theirs = f"the remote's is in {item['copy']}" if item["copy"] else str(item["why"])
        echo(f"conflict: {item['path']}: kept the local version; {theirs}")
    for item in answer.get("unwritable") or []:
        echo(f"not written here: {item['path']}: {item['reason']} (kept in git; see `committer status`)")
    _say_kept(answer)
    outcome, new = answer["outcome"], (answer["new"] or "")[:12]
    if outcome == "refused":
        echo(f"committer: error: pull refused: {answer['reason']}", err=True)
        return 1
    if outcome == "diverged":
        echo(f"committer: {answer['reason']}", err=True)
        return 1
    if outcome == "held":
        echo(f"pull held: {answer['reason']}; run `committer confirm-deletes` to apply it")
        return 1
    echo({
        "up_to_date": "already up to date",
        "ahead": "nothing to pull: the local branch is ahead of the remote",
        "no_remote_branch": f"nothing to pull: {answer['reason']}",
        "fast_forward": f"fast-forwarded to {new}: {answer['written']} written, {answer['deleted']} deleted",
        "merge": f"merged the remote into {new}: {answer['written']} written, {answer['deleted']} deleted",
        "pull_request": _proposed(answer),
    }.get(outcome, outcome))
    if answer["sha"] and not running:
        _push_and_report(settings, GitRepo.of(settings))
    return 0


def _proposed(answer: dict[str, Any]) -> str:
    """What a pull under pull_policy = pull-request did with the local commits, and with the data directory."""
    found = answer.get("pull_request") or {}
    where = (f"pull request {found['url']}" if found.get("url")
             else "no pull request: the remote's host has none; merge the branch there by hand")
    return (f"the local commits went to the branch {found.get('branch')} ({where}); the data directory follows "
            f"the remote at {(answer['new'] or '')[:12]}: {answer['written']} written, {answer['deleted']} deleted")


def _say_kept(answer: dict[str, Any]) -> None:
    """A pull's remote deletions of files the ignore rules keep out: untracked here, never deleted."""
    if answer.get("kept"):
        echo(f"kept {answer['kept']} file(s) that the ignore rules now keep out of the history "
             "(untracked, not deleted; see held_files in `committer status`)")


@command("confirm-deletes", events=True, commits=True)
def confirm_deletes(opts: Options) -> None:
    """Commit a held mass deletion (the deletions the guard kept out of history); `committer put-back`
    writes them back instead."""
    settings = opts.settings()
    require_repo(settings)
    answer = ops.run(settings, ConfirmDeletes())
    before = answer.get("before")
    _say_kept(answer.get("pull") or {})
    if before is None:
        echo("nothing is held")
    else:
        echo(f"committed the held deletion of {answer['deleted']} file(s) ({before['reason']})")


@command(events=True, commits=True)
def restore(
    opts: Options,
    path: Annotated[str, Argument(help="A file or folder of the data directory; . for all of it.")],
    to: Annotated[str, Option("--to", help="A commit, tag, `main@{2 hours ago}` or a date.")],
    dry_run: Annotated[bool, Option("--dry-run", help="List what would change; change nothing.")] = False,
    as_pr: Annotated[bool, Option("--as-pr", help="Commit it on a new branch and open a pull request; the data "
                                                  "directory is not changed.")] = False,
) -> int:
    """Put a file or folder back as it was at a revision, as a new audited commit; exit 1 when some of it
    could not be written (the rest is restored, and each such path is named). With --as-pr the commit goes to
    a branch `committer/restore/<UTC time>` of the remote with a pull request, and nothing here changes."""
    settings = opts.settings()
    require_repo(settings)
    # A name that is not UTF-8 may be typed as `log` shows it.
    rel = GitRepo.of(settings).named(relative(settings, path), to)
    with shown_steps("restoring"):
        answer = ops.run(settings, Restore(rel, to, dry_run, as_pr))
    for item in answer["actions"]:
        aside = (" (its current content is in no commit: kept beside it as a conflict copy)"
                 if item.get("aside") else "")
        echo(f"{'would ' if dry_run else ''}{item['action']} {display_path(item['path'])}{aside}")
    for item in answer.get("kept") or []:
        verb = "would keep" if dry_run else "kept"
        echo(f"{verb} {display_path(item['path'])}: {item['why']}; it stays as it is")
    for item in answer.get("failed") or []:
        echo(f"could not restore {display_path(item['path'])}: {item['reason']}; it was left as it is")
    source, shown = answer["source"][:12], display_path(answer["path"])
    to = " ".join(to.split())  # one line whatever was typed (echo escapes the rest)
    failed = len(answer.get("failed") or [])
    if dry_run:
        echo(f"{len(answer['actions'])} change(s) to restore {shown} from {to} ({source})")
    elif as_pr and answer["sha"]:
        found = answer.get("pull_request") or {}
        where = (f"pull request {found['url']}" if found.get("url") else
                 f"no pull request: {answer['pull_request_error']}" if answer.get("pull_request_error") else
                 "no pull request: the remote's host has none; merge the branch there by hand")
        echo(f"restore of {shown} from {to} ({source}) committed as {answer['sha'][:12]} on the branch "
             f"{answer['branch']}: {where}; the data directory is unchanged")
    elif answer["sha"]:
        partly = f", except {failed} path(s) that could not be written" if failed else ""
        echo(f"restored {shown} from {to} ({source}){partly}: commit {answer['sha'][:12]}")
    elif not failed:
        echo(f"{shown} is already as it was at {to} ({source})")
    return 1 if failed else 0


@command("snapshot", commits=True)
def snapshot_command(
    opts: Options,
    message_text: Annotated[str | None, Option("-m", "--message", help="What this snapshot is.")] = None,
    tag: Annotated[str | None, Option("--tag", help="Tag name [snapshot-<UTC time>].")] = None,
    list_them: Annotated[bool, Option("--list", help="List the snapshots.")] = False,
    as_json: Annotated[bool, Option("--json", help="With --list: one JSON object per line.")] = False,
) -> None:
    """Tag HEAD (an annotated tag, pushed with the next push), or list the snapshots."""
    from committer.ops import snapshot

    settings = opts.settings()
    require_repo(settings)
    if list_them:
        found = snapshot.listing(GitRepo.of(settings))
        for item in found:
            echo(json.dumps(item) if as_json else
                       f"{item['tag']}  {item['date']}  {item['commit'][:12]}  {item['message']}")
        if not found and not as_json:
            echo(snapshot.NONE_YET)
        return
    if not message_text:
        raise ConfigError("--message", "a snapshot needs a message: -m 'what this is'")
    with shown_steps("snapshot"):
        answer = ops.run(settings, Snapshot(message_text, tag))
    echo(f"snapshot {answer['tag']} at {answer['head'][:12]} (pushed with the next push)")


@command("connect", remote=True)
def connect_command(
    opts: Options,
    target: Annotated[str, Argument(metavar="OWNER/REPO", help="The GitHub repository, e.g. acme/notes.")],
    webhook_url: Annotated[
        str | None, Option("--webhook-url", show_default=False,
                           help="Register GitHub's push webhook to this URL (the daemon's /webhook).")
    ] = None,
) -> int:
    """Create the private GitHub repository if missing, register the push webhook, write the settings."""
    import os

    from committer.core.configfile import read_config_file
    from committer.core.discover import file_to_write
    from committer.core.settings import load_settings
    from committer.ops import doctor as checks
    from committer.ops.connect import connect

    flags, where = opts.flags, opts.find()
    path = file_to_write(where, os.environ)
    # The file may not exist yet: connect writes it.
    settings = load_settings(read_config_file(path) if path.exists() else {}, os.environ, flags, where.values, path)
    logs.configure(settings.log_format, settings.log_level)
    if settings.layout != "monorepo":
        raise ConfigError("layout", "per-project: each project's remote comes from remote_template and is created "
                                    "when its repository is made; connect writes one remote for one repository")
    if webhook_url is not None and not webhook_url.startswith(("https://", "http://")):
        raise ConfigError("--webhook-url", f"expected an http(s) URL, got {webhook_url!r}")
    for line in connect(settings, target, path, webhook_url):
        echo(line)
    written = Options(str(path), flags).settings()  # as the daemon will read them
    found = list(checks.remote_checks(written))
    for check in found:
        echo(f"{check.status:<5} {check.name:<12} {check.detail}")
        if check.fix:
            echo(f"{'':18}fix: {check.fix}")
    return 1 if any(check.status == "fail" for check in found) else 0
