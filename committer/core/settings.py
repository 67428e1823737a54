"""Settings: defaults < TOML file < COMMITTER_* environment < flags, validated once."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from committer.core import values
from committer.core.errors import ConfigError, redact

DEFAULT_CONFIG_FILE = Path("/etc/committer/committer.toml")
DEFAULT_GITHUB_API = "https://api.github.com"
APP_SETTINGS = ("github_app_id", "github_app_installation_id", "github_app_private_key_file")
OBSERVERS = ("auto", "inotify", "poll")
LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Settings:
    """Everything the daemon and the CLI need to know, already validated."""

    data_dir: Path = Path("/app/data")
    git_dir: Path = Path("/app/git/knowledge.git")
    branch: str = "main"
    remote: str = ""
    debounce: float = 2.0
    max_delay: float = 30.0
    observer: str = "auto"
    poll_interval: float = 5.0
    reconcile_interval: float = 600.0
    push_interval: float = 5.0
    push_backoff_max: float = 300.0
    push_timeout: float = 120.0
    allow_non_ff: bool = False
    pull_interval: float = 0.0
    pull_merge: bool = True
    conflict_frontmatter: bool = True  # a conflict copy's frontmatter title and permalink get its suffix
    webhook_secret_file: Path | None = None
    ui_token_file: Path | None = None
    token_file: Path | None = None
    github_app_id: str = ""
    github_app_installation_id: int = 0
    github_app_private_key_file: Path | None = None
    github_api_url: str = DEFAULT_GITHUB_API
    allow_public: bool = False
    git_ssh_command: str = ""
    shutdown_timeout: float = 10.0
    git_timeout: float = 300.0
    transfer_timeout: float = 6 * 3600.0
    max_transfer: int = 50_000_000_000
    missing_data_timeout: float = 0.0
    http: str = ""
    author_name: str = "committer"
    author_email: str = "committer@localhost"
    ignore: tuple[str, ...] = ()
    max_delete: int = 100
    max_batch_files: int = 10_000
    lfs_threshold: int = 10_000_000
    max_file_size: int = 100_000_000
    log_format: str = "auto"
    log_level: str = "info"
    notify_url: str = ""
    notify_secret_file: Path | None = None
    notify_timeout: float = 10.0
    notify_outbox_max: int = 10_000
    exec_hook: str = ""
    exec_hook_timeout: float = 30.0
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def source_of(self, name: str) -> str:
        """Where a setting's value came from: flag, env, file or default."""
        return self.sources.get(name, "default")


def shown(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every setting with its value as it may be shown (credentials redacted) and where it came from."""
    return {name: {"value": _plain(name, getattr(settings, name)), "source": settings.source_of(name)}
            for name in NAMES}


def _plain(name: str, value: object) -> object:
    if name == "remote":
        return redact(str(value))
    if name == "notify_url":
        return values.shown_url(str(value))
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "data_dir": values.path,
    "git_dir": values.path,
    "branch": values.branch,
    "remote": values.remote_url,
    "debounce": values.parse_duration,
    "max_delay": values.positive_duration,
    "observer": values.choice(OBSERVERS),
    "poll_interval": values.positive_duration,
    "reconcile_interval": values.parse_duration,
    "push_interval": values.positive_duration,
    "push_backoff_max": values.positive_duration,
    "push_timeout": values.positive_duration,
    "allow_non_ff": values.boolean,
    "pull_interval": values.parse_duration,
    "pull_merge": values.boolean,
    "conflict_frontmatter": values.boolean,
    "webhook_secret_file": values.optional_path,
    "ui_token_file": values.optional_path,
    "token_file": values.optional_path,
    "github_app_id": values.app_id,
    "github_app_installation_id": values.count,
    "github_app_private_key_file": values.optional_path,
    "github_api_url": values.api_url,
    "allow_public": values.boolean,
    "git_ssh_command": values.line,
    "shutdown_timeout": values.positive_duration,
    "git_timeout": values.positive_duration,
    "transfer_timeout": values.positive_duration,
    "max_transfer": values.positive_size,
    "missing_data_timeout": values.parse_duration,
    "http": values.address,
    "author_name": values.identity,
    "author_email": values.identity,
    "ignore": values.patterns,
    "max_delete": values.count,
    "max_batch_files": values.positive_count,
    "lfs_threshold": values.parse_size,
    "max_file_size": values.parse_size,
    "log_format": values.choice(LOG_FORMATS),
    "log_level": values.choice(LOG_LEVELS),
    "notify_url": values.http_url,
    "notify_secret_file": values.optional_path,
    "notify_timeout": values.positive_duration,
    "notify_outbox_max": values.positive_count,
    "exec_hook": values.command_line,
    "exec_hook_timeout": values.positive_duration,
}
NAMES = tuple(_PARSERS)


def env_name(name: str) -> str:
    """The environment twin of a setting: COMMITTER_<NAME>."""
    return f"COMMITTER_{name.upper()}"


def read_config_file(path: Path) -> dict[str, object]:
    """Parse a TOML config file; unknown keys and bad syntax are errors naming the file."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("config", f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    table = raw.get("committer", raw)
    if not isinstance(table, dict):
        raise ConfigError("config", f"{path}: [committer] must be a table")
    values: dict[str, object] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in _PARSERS:
            raise ConfigError(f"config {path}", f"unknown setting {key!r}")
        values[name] = value
    return values


def config_path(flag: str | None, env: Mapping[str, str]) -> Path | None:
    """Which config file applies: --config, COMMITTER_CONFIG, else the system file if present."""
    if flag:
        return Path(flag).expanduser()
    if env.get("COMMITTER_CONFIG"):
        return Path(env["COMMITTER_CONFIG"]).expanduser()
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(
    file_values: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object | None] | None = None,
) -> Settings:
    """Merge the four layers and validate every value; pure apart from reading nothing."""
    env = env or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers: list[tuple[str, Mapping[str, object | None]]] = [
        ("file", file_values or {}),
        ("env", {name: env.get(env_name(name)) for name in NAMES}),
        ("flag", flags or {}),
    ]
    for source, layer in layers:
        for name, raw in layer.items():
            if raw is None:
                continue
            if name not in _PARSERS:
                raise ConfigError(name, "unknown setting")
            label = env_name(name) if source == "env" else name.replace("_", "-")
            values[name] = _PARSERS[name](label, raw)
            sources[name] = source
    settings = dataclasses.replace(Settings(), **values, sources=sources)
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


def _check_consistency(settings: Settings) -> None:
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


def require_git_dir(settings: Settings) -> None:
    """The git dir is a repository, or a folder that can become one: missing, empty, or holding only
    committer's own state folder. Anything else (a file, someone's folder) is never turned into one."""
    path = settings.git_dir
    if not os.path.lexists(path):
        return
    if not path.is_dir():
        raise ConfigError("git-dir", f"{path} is a file, not a directory; give the path of the repository folder")
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return
    try:
        others = sorted(name for name in os.listdir(path) if name != "committer")
    except OSError as exc:
        raise ConfigError("git-dir", f"{path} cannot be read: {exc.strerror}") from None
    if others:
        raise ConfigError(
            "git-dir",
            f"{path} is not empty and is not a git repository (it holds {others[0]!r}); give a new or empty "
            "folder, or the repository committer made",
        )


def require_data_dir(settings: Settings) -> None:
    """The data directory must exist and be a directory we can list."""
    path = settings.data_dir
    if not path.exists():
        raise ConfigError("data-dir", f"{path} does not exist")
    if not path.is_dir():
        raise ConfigError("data-dir", f"{path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError("data-dir", f"{path} cannot be read")
