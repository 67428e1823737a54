"""Settings: defaults < TOML file < COMMITTER_* environment < flags, validated once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from committer.core import projectnames, values
from committer.core.errors import ConfigError, redact
from committer.core.table import COMMITS, EVENTS, PLACE, REMOTE, Row, rows, setting
from committer.core.table import env_name as env_name  # where the callers have always found it

DEFAULT_CONFIG_FILE = Path("/etc/committer/committer.toml")
DEFAULT_GITHUB_API = "https://api.github.com"
APP_SETTINGS = ("github_app_id", "github_app_installation_id", "github_app_private_key_file")
OBSERVERS = ("auto", "inotify", "poll")
LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
PULL_POLICIES = ("merge", "ff-only", "pull-request")
BISYNC_CONFLICTS = ("fold", "keep")


@dataclass(frozen=True)
class Settings:
    """Everything the daemon and the CLI need to know, already validated. Each field is the setting's one row
    (core/table.py): parser, help, flags, default; the loader, the CLI options and the manual come from it."""

    data_dir: Path = setting(
        Path("/app/data"), values.path, flags=(PLACE,), help="Directory to version",
        doc="the directory to version; must exist")
    git_dir: Path = setting(
        Path("/app/git/knowledge.git"), values.path, flags=(PLACE,), help="Bare repository, outside the data dir",
        doc="the bare repository; must be outside the data directory, and be a repository, a missing or an empty "
            "folder (a file, or a folder holding anything else, is refused: it is never turned into a repository)")
    branch: str = setting(
        "main", values.branch, flags=(PLACE,), help="Branch to commit to",
        doc="the branch commits go to: a short name `git check-ref-format --branch` accepts (`main`, `team/notes`; "
            "not `HEAD`, `a..b`, `-x`, nor a full ref such as `refs/heads/x`). A repository that already has history "
            "on another branch is not switched: `run` and `init` refuse unless `--new-branch` is given, which starts "
            "the branch at the current history's head")
    remote: str = setting(
        "", values.remote_url, flags=(REMOTE,), shown="empty (local history only)", help="URL to push to",
        show=lambda value: redact(str(value)),
        doc="URL to push to: `https://host/owner/repo.git`, `ssh://[user@]host[:port]/path`, "
            "`user@host:owner/repo.git`, `file:///path` or `/path`; plain `http://` only to `localhost`, `127.0.0.1` "
            "or `[::1]` (a tunnel). Anything else is one line naming `remote` and exit 2: a value starting with `-`, "
            "white space, control characters, a backslash, a second `@` or any host that is not one plain name, "
            "address or `[IPv6]` address, other schemes (`ext::`, `git://`, `ftp://`), a password in an ssh URL. See "
            "[Safety](safety.md#remote-urls-and-the-lfs-endpoint)")
    debounce: float = setting(2.0, values.parse_duration, flags=("run",), help="Quiet time that closes a batch")
    max_delay: float = setting(
        30.0, values.positive_duration, flags=("run",), help="Longest a batch waits after its first event",
        doc="longest a batch waits after its first event (at least `debounce`)")
    observer: str = setting(
        "auto", values.choice(OBSERVERS), flags=("run",), help="auto, inotify or poll",
        doc="`auto`, `inotify` or `poll`")
    poll_interval: float = setting(
        5.0, values.positive_duration, flags=("run",), help="Scan interval of the poll observer")
    reconcile_interval: float = setting(
        600.0, values.parse_duration, flags=("run",),
        help="Full reconcile, and a look at the remote branch, this often; 0 for never",
        doc="periodic full reconcile, and comparison of the remote branch with what was pushed; `0` turns both off")
    push_interval: float = setting(
        5.0, values.positive_duration, flags=("run",), help="How often the push loop looks for unpushed commits")
    push_backoff_max: float = setting(
        300.0, values.positive_duration, flags=("run",), help="Cap of the retry backoff after push failures")
    push_timeout: float = setting(
        120.0, values.positive_duration, flags=(REMOTE,),
        help="Stop a network git call that does no work for this long",
        doc="a network git call that does no work (no CPU, no byte moved) for this long is stopped")
    push_part_files: int = setting(
        100_000, values.count, flags=(REMOTE,), help="Most changed paths one push carries; 0 for no limit",
        doc="a backlog of commits changing more paths than this (a first push of a large backfill) is pushed in "
            "parts: ranges of commits in order, each a plain fast-forward push of its last commit, so git's memory "
            "stays bounded; `0` pushes every backlog at once")
    allow_non_ff: bool = setting(
        False, values.boolean, flags=(REMOTE,),
        help="Force-push, with a lease on what was last pushed, when the remote moved",
        doc="the only way anything is force-pushed: `--force-with-lease` against what was last pushed (see Pushing)")
    pull_interval: float = setting(
        0.0, values.parse_duration, flags=("run",), shown="`0` (off)",
        help="Fetch and pull the remote this often",
        doc="fetch the remote this often and pull what is new (see Pulling)")
    pull_merge: bool = setting(
        True, values.boolean, flags=("run", "pull"),
        help="Merge when both sides have new commits; false: fast-forward only (older form of pull_policy)",
        doc="the older form of `pull_policy`: `false` means `pull_policy = ff-only`; `true` (the default) leaves "
            "`pull_policy` as it is. `pull_merge = false` with `pull_policy` set to anything but `ff-only` is one "
            "line and exit 2, unless `--pull-policy` is typed for one command (it then wins)")
    pull_policy: str = setting(
        "merge", values.choice(PULL_POLICIES), flags=("run", "pull"),
        help="When both sides have new commits: merge, ff-only or pull-request",
        doc="when both sides have new commits: `merge` them (conflicts become conflict copies); `ff-only`: merge "
            "nothing, keep committing here, stop pushing and say `diverged: waiting for a person`; `pull-request`: "
            "push the local commits to a branch `committer/<host>/<UTC time>`, open a pull request for them, and "
            "let the data directory follow the remote (see [Pulling](pulling.md#pull-policies))")
    conflict_frontmatter: bool = setting(
        True, values.boolean, flags=("run", "pull"),
        help="A conflict copy's frontmatter title and permalink get its suffix",
        doc="a conflict copy of a Markdown note with YAML frontmatter gets the copy's conflict suffix in its `title:`"
            " and `permalink:` too, so basic-memory indexes it as a note of its own; `false`: the copy's content is "
            "the other side's, byte for byte")
    bisync_conflicts: str = setting(
        "fold", values.choice(BISYNC_CONFLICTS), flags=("run",), help="fold or keep rclone bisync's conflict files",
        doc="the files `rclone bisync` makes on a conflict (`n.md..path1`, `n.md..path2`; `n.md.conflict1` of newer "
            "rclone) are reported as conflicts; `fold` (the default) puts them back in one commit, the newer version "
            "at the note's own path and the other beside it as `n (conflict from bisync, <time>).md`; `keep` leaves "
            "them as rclone made them (see [Pulling](pulling.md#beside-rclone-bisync))")
    webhook_secret_file: Path | None = setting(
        None, values.optional_path, flags=("run",), help="File holding the secret of the push webhook",
        doc="file holding the secret of the push webhook, re-read for every delivery; `COMMITTER_WEBHOOK_SECRET` or "
            "the systemd credential `webhook_secret` also work")
    ui_token_file: Path | None = setting(
        None, values.optional_path, flags=("run",), help="File holding the token the history pages need off loopback",
        doc="the token the history pages and `/mcp` ([Agents](agents.md)) need when `http` binds anything but "
            "loopback; else `COMMITTER_UI_TOKEN`, "
            "else the systemd credential `ui_token` (see [History pages](history-pages.md)); a missing, empty or "
            "short (< 16 characters) file is one line and exit 2")
    token_file: Path | None = setting(
        None, values.optional_path, flags=(REMOTE,), help="File holding the HTTPS token",
        doc="file holding the HTTPS token, re-read before every push")
    github_app_id: str = setting(
        "", values.app_id, flags=(REMOTE,), help="GitHub App id (or client id) to push as",
        doc="push as this GitHub App (its numeric id or its client id `Iv...`) instead of with a token; not together "
            "with a token (exit 2)")
    github_app_installation_id: int = setting(
        0, values.count, flags=(REMOTE,), shown="none", help="The App's installation id",
        doc="the App's installation on the account that owns the repository")
    github_app_private_key_file: Path | None = setting(
        None, values.optional_path, flags=(REMOTE,), help="The App's private key (PEM)",
        doc="the App's private key (PEM), re-read at every token; else the systemd credential "
            "`github_app_private_key`")
    github_api_url: str = setting(
        DEFAULT_GITHUB_API, values.api_url, flags=(REMOTE,), help="GitHub's REST API",
        doc="GitHub's REST API; set it for GitHub Enterprise (`https://HOST/api/v3`), and any remote is then taken "
            "for GitHub's")
    allow_public: bool = setting(
        False, values.boolean, flags=(REMOTE,),
        help="Allow pushing to a GitHub repository that is public (see Pushing)")
    git_ssh_command: str = setting("", values.line, flags=(REMOTE,), help="`GIT_SSH_COMMAND` for ssh remotes")
    verify_interval: float = setting(
        86400.0, values.parse_duration, flags=("run",),
        help="Prove the remote copy can be restored this often (`committer verify`); 0 for never",
        doc="how often the daemon fetches the remote into a temporary repository and checks it (`committer verify`: "
            "fsck, the pushed tree, every LFS object; see [Pushing](pushing.md#verified-backups)); `0` turns it off. "
            "Off by default for a `file://` or path remote, unless set")
    shutdown_timeout: float = setting(
        10.0, values.positive_duration, flags=("run",), help="Bound of the last push attempt on stop")
    progress_interval: float = setting(
        5.0, values.positive_duration, flags=("run",),
        help="How often long work (a full scan, a push) logs a progress line")
    git_timeout: float = setting(
        300.0, values.positive_duration, flags=(PLACE,),
        help="Deadline of every local git process (a hung disk cannot stall the daemon)")
    transfer_timeout: float = setting(
        6 * 3600.0, values.positive_duration, flags=(REMOTE,), help="Longest one network git call may run",
        doc="longest one network git call (push, fetch, ls-remote, LFS upload or download) may run, however busy: a "
            "server that trickles an endless pack is stopped here, `push_timeout` stops one that goes quiet")
    max_transfer: int = setting(
        50_000_000_000, values.positive_size, flags=(REMOTE,), help="Most one network git call may write to disk",
        doc="most one network git call may write to disk here (the `write_bytes` of git and its helpers, from "
            "`/proc`, or, when larger, as on tmpfs which counts none, the growth of the temporary packs, objects and "
            "LFS partials it writes in the git dir), checked every second: an endless pack or LFS body is stopped at "
            "this size and what it wrote is removed. Raise it only for a repository whose full history or LFS store "
            "is larger")
    missing_data_timeout: float = setting(
        0.0, values.parse_duration, flags=("run",), shown="`0` (wait for ever)",
        help="Exit 5 when the data directory stays away longer")
    http: str = setting(
        "", values.address, flags=("run",), shown="off",
        help="Serve the history pages, /healthz, /readyz, /metrics on [HOST]:PORT",
        doc="serve the history pages, `/healthz`, `/readyz`, `/metrics` and `POST /webhook` on `[HOST]:PORT` (a bare "
            "port binds 127.0.0.1)")
    author_name: str = setting("committer", values.identity, flags=(COMMITS,), help="Bot identity of every commit")
    author_email: str = setting(
        "committer@localhost", values.identity, flags=(COMMITS,), help="Bot email of every commit")
    ignore: tuple[str, ...] = setting(
        (), values.patterns, flags=(COMMITS,), help="Extra gitignore patterns",
        doc="extra gitignore patterns; in the environment, comma-separated")
    secret_allow: tuple[str, ...] = setting(
        (), values.patterns, flags=(COMMITS,),
        help="gitignore patterns of files whose content is never scanned for secrets",
        doc="gitignore patterns of files whose content is never scanned for secrets (examples, test fixtures): "
            "the allow-list; in the environment, comma-separated. `committer allow-secret PATH` lets one version "
            "in instead")
    max_delete: int = setting(
        100, values.count, flags=(COMMITS,), help="A batch deleting more tracked files than this is held")
    max_batch_files: int = setting(
        10_000, values.positive_count, flags=(COMMITS,), help="Most changed paths one commit carries",
        doc='no commit carries more changed paths than this; a larger batch becomes several commits (`"part":"1/3"`, '
            '...)')
    lfs_threshold: int = setting(
        10_000_000, values.parse_size, flags=(COMMITS,),
        help="Files at or above this size go through Git LFS; 0 for never",
        doc="files at or above this size go through Git LFS (or are held without git-lfs); `0` turns LFS off")
    max_file_size: int = setting(
        100_000_000, values.parse_size, flags=(COMMITS,), help="A file above this that does not go through LFS is held",
        doc="a file above this that does not go through LFS is held (GitHub refuses files over 100 MiB)")
    log_format: str = setting(
        "auto", values.choice(LOG_FORMATS), flags=(PLACE,), help="auto, console or json",
        doc="`console` on a terminal, `json` lines otherwise")
    log_level: str = setting(
        "info", values.choice(LOG_LEVELS), flags=(PLACE,), help="debug, info, warning, error",
        doc="`debug`, `info`, `warning`, `error`")
    notify_url: str = setting(
        "", values.http_url, flags=(EVENTS,), shown="off", help="POST every event, signed, to this http(s) URL",
        show=lambda value: values.shown_url(str(value)),
        doc="POST every event, signed, to this `http(s)` URL, from a durable outbox (see [Events](events.md)); a URL "
            "that is not http(s) is one line and exit 2")
    notify_secret_file: Path | None = setting(
        None, values.optional_path, flags=(EVENTS,), help="File holding the secret that signs the events",
        doc="file holding the secret that signs the events (`X-Committer-Signature-256`), re-read for every delivery;"
            " else `COMMITTER_NOTIFY_SECRET`, else the systemd credential `notify_secret`")
    notify_timeout: float = setting(
        10.0, values.positive_duration, flags=(EVENTS,), help="Longest one delivery may take",
        doc="the longest one delivery may take, connection to answer; then it is retried")
    notify_outbox_max: int = setting(
        10_000, values.positive_count, flags=(EVENTS,),
        help="Events kept for a receiver; past it the oldest are dropped",
        doc="events kept for a receiver that does not take them; past it the oldest are dropped, logged and counted")
    exec_hook: str = setting(
        "", values.command_line, flags=(EVENTS,), shown="off",
        help="Command line run once per event, the JSON on its stdin",
        doc="a command line run once per event (no shell), the JSON on its stdin, in the data directory's parent")
    exec_hook_timeout: float = setting(
        30.0, values.positive_duration, flags=(EVENTS,), help="Longest one run of the hook may take",
        doc="the hook and what it forked are killed after this; then it is retried. What it leaves running in its "
            "process group when it exits (`sleep 777 &`) is killed then too")
    layout: str = setting(
        "monorepo", values.choice(projectnames.LAYOUTS), flags=(PLACE,), help="monorepo, or per-project: each "
        "top-level folder its own repository", doc="`monorepo`: the data directory is one repository, `git_dir`. "
        "`per-project`: each top-level folder of the data directory is a repository of its own, "
        "`<git_dir>/<project>.git`, its remote from `remote_template`, one daemon for all ([Projects](projects.md))")
    remote_template: str = setting(
        "", projectnames.remote_template, flags=(REMOTE,), shown="empty (local history only)", show=lambda v: redact(
            str(v)), help="Per-project layout: each project's remote, {project} replaced by its name", doc="with "
        "`layout = per-project`, each project's remote: `{project}` is replaced by the folder's name "
        "(`https://github.com/acme/{project}.git`); once replaced it must be a `remote` committer accepts")
    projects_include: tuple[str, ...] = setting(
        (), values.patterns, flags=("run",), help="Per-project layout: globs of the folders versioned (all if empty)",
        doc="with `layout = per-project`, globs (`notes-*`) of the top-level folders that are projects; empty: every "
            "folder; in the environment, comma-separated")
    projects_exclude: tuple[str, ...] = setting(
        (), values.patterns, flags=("run",), help="Per-project layout: globs of the folders never versioned",
        doc="globs of top-level folders never versioned (they win over `projects_include`); comma-separated in env")
    project: str = setting(
        "", values.line, flags=(PLACE,), shown="none", help="Per-project layout: the project a command works on",
        doc="with `layout = per-project`, the project (top-level folder) a command works on: `committer status "
            "--project notes`; given to `run`, that one project runs as a daemon of its own")
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    config_file: Path | None = field(default=None, compare=False, repr=False)  # the TOML file read, if any

    def source_of(self, name: str) -> str:
        """Where a setting's value came from: flag, env, file or default."""
        return self.sources.get(name, "default")


def shown(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every setting with its value as it may be shown (credentials redacted) and where it came from."""
    return {name: {"value": _plain(name, getattr(settings, name)), "source": settings.source_of(name)}
            for name in NAMES}


def _plain(name: str, value: object) -> object:
    show = ROW[name].show
    if show is not None:
        return show(value)
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


ROWS: tuple[Row, ...] = rows(Settings)
ROW: dict[str, Row] = {row.name: row for row in ROWS}
NAMES = tuple(ROW)


def load_settings(
    file_values: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object | None] | None = None,
    found: Mapping[str, object | None] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge the layers and validate every value; pure apart from reading nothing. `found`: what a running
    daemon's record says (its data dir, git dir, branch), above its file and below the environment."""
    env = env or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers: list[tuple[str, Mapping[str, object | None]]] = [
        ("file", file_values or {}),
        ("daemon", found or {}),
        ("env", {name: env.get(env_name(name)) for name in NAMES}),
        ("flag", flags or {}),
    ]
    for source, layer in layers:
        for name, raw in layer.items():
            if raw is None:
                continue
            if name not in ROW:
                raise ConfigError(name, "unknown setting")
            label = env_name(name) if source == "env" else name.replace("_", "-")
            values[name] = ROW[name].parse(label, raw)
            sources[name] = source
    settings = dataclasses.replace(Settings(), **values, sources=sources, config_file=config_file)
    _check_consistency(settings)
    _check_app(settings, env)
    return settings


def _check_app(settings: Settings, env: Mapping[str, str]) -> None:
    """A GitHub App needs its id and installation; it and a token are two answers to one question."""
    given = [name for name in APP_SETTINGS if getattr(settings, name)]
    if not given:
        return
    if settings.token_file is not None or env.get("COMMITTER_TOKEN", "").strip():
        token = "token-file" if settings.token_file is not None else "COMMITTER_TOKEN"
        raise ConfigError(
            given[0].replace("_", "-"),
            f"a GitHub App and a token ({token}) are both configured; keep one of them",
        )
    if not settings.github_app_id:
        raise ConfigError("github-app-id", "the GitHub App's id is needed with the other github_app_* settings")
    if not settings.github_app_installation_id:
        raise ConfigError(
            "github-app-installation-id", "the App's installation id is needed with the other github_app_* settings"
        )


def policy(settings: Settings) -> str:
    """The pull policy in force: `pull_policy`, or `ff-only` where only the older `pull_merge = false` says so;
    `--pull-policy` typed for one command (the way out of a divergence) wins over a file's or the environment's."""
    one_off = settings.source_of("pull_policy") == "flag" and settings.source_of("pull_merge") != "flag"
    return "ff-only" if not settings.pull_merge and not one_off else settings.pull_policy


def _check_consistency(settings: Settings) -> None:
    if settings.source_of("pull_policy") != "default" and policy(settings) != settings.pull_policy:
        raise ConfigError("pull-policy", f"pull_policy = {settings.pull_policy} and pull_merge = false disagree "
                                         "(pull_merge = false means ff-only); keep pull_policy and drop pull_merge")
    if settings.max_delay < settings.debounce:
        raise ConfigError(
            "max-delay",
            f"must be at least debounce ({settings.max_delay}s < {settings.debounce}s)",
        )
    data, git = _resolved(settings.data_dir), _resolved(settings.git_dir)
    if git == data or data in git.parents:
        raise ConfigError(
            "git-dir",
            f"{settings.git_dir} is inside the data directory {settings.data_dir}; "
            "keep the repository outside it",
        )
    if git in data.parents:
        raise ConfigError("data-dir", f"{settings.data_dir} is inside the git directory {settings.git_dir}")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path
