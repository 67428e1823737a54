"""Settings: defaults < TOML file < COMMITTER_* environment < flags, validated once."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from committer.core.errors import ConfigError, redact

DEFAULT_CONFIG_FILE = Path("/etc/committer/committer.toml")
DEFAULT_GITHUB_API = "https://api.github.com"
APP_SETTINGS = ("github_app_id", "github_app_installation_id", "github_app_private_key_file")
OBSERVERS = ("auto", "inotify", "poll")
LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
# git check-ref-format: no component starting with `.` or ending in `.lock`, no `..`, `@{`, `//`, control
# characters, space, ~ ^ : ? * [ \ ; not starting with `-` or `/`, not ending with `/` or `.`.
_BRANCH_BAD = re.compile(r"(^[-/])|((^|/)\.)|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(/$)|(\.$)|(\.lock(/|$))|(@\{)|(//)")


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
    webhook_secret_file: Path | None = None
    token_file: Path | None = None
    github_app_id: str = ""
    github_app_installation_id: int = 0
    github_app_private_key_file: Path | None = None
    github_api_url: str = DEFAULT_GITHUB_API
    allow_public: bool = False
    git_ssh_command: str = ""
    shutdown_timeout: float = 10.0
    git_timeout: float = 300.0
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
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def parse_duration(setting: str, value: object) -> float:
    """Seconds from 500ms, 2s, 5m, 1h or a bare number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(setting, f"expected a duration such as 500ms, 2s or 5m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(setting, f"expected a duration such as 500ms, 2s or 5m, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ConfigError(setting, f"must not be negative, got {value!r}")
    return seconds


def parse_size(setting: str, value: object) -> int:
    """Bytes from 10MB, 100 MiB, 512k, 1G or a bare number of bytes (KB, MB, GB are powers of 1000)."""
    if isinstance(value, bool):
        raise ConfigError(setting, f"expected a size such as 10MB or 100MiB, got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ConfigError(setting, f"expected a size such as 10MB or 100MiB, got {value!r}")
        unit = (match.group(2) or "").lower().removesuffix("b")
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size < 0:
        raise ConfigError(setting, f"must not be negative, got {value!r}")
    return size


def _count(setting: str, value: object) -> int:
    if isinstance(value, bool):
        raise ConfigError(setting, f"expected a whole number, got {value!r}")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ConfigError(setting, f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise ConfigError(setting, f"must not be negative, got {value!r}")
    return number


def _positive_count(setting: str, value: object) -> int:
    number = _count(setting, value)
    if number == 0:
        raise ConfigError(setting, "must be at least 1")
    return number


def _positive_duration(setting: str, value: object) -> float:
    seconds = parse_duration(setting, value)
    if seconds <= 0:
        raise ConfigError(setting, f"must be greater than zero, got {value!r}")
    return seconds


def _choice(options: tuple[str, ...]) -> Callable[[str, object], str]:
    def parse(setting: str, value: object) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ConfigError(setting, f"expected one of {', '.join(options)}, got {value!r}")
        return text

    return parse


def _path(setting: str, value: object) -> Path:
    text = str(value).strip()
    if not text:
        raise ConfigError(setting, "must not be empty")
    return Path(text).expanduser().absolute()


def _bool(setting: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(setting, f"expected true or false, got {value!r}")


def _optional_path(setting: str, value: object) -> Path | None:
    if value is None or str(value).strip() == "":
        return None
    return _path(setting, value)


_ADDRESS = re.compile(r"^(?:(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])?:)?(?P<port>\d{1,5})$")


def parse_address(setting: str, value: object) -> tuple[str, int] | None:
    """(host, port) from `9464` or `:9464` (loopback), `0.0.0.0:9464`, `[::1]:9464`; None when empty."""
    text = str(value).strip()
    if not text:
        return None
    match = _ADDRESS.match(text)
    port = int(match.group("port")) if match else -1
    if match is None or not 0 < port < 65536:
        raise ConfigError(setting, f"expected [HOST]:PORT such as 127.0.0.1:9464, got {value!r}")
    host = (match.group("host") or "127.0.0.1").strip("[]")
    return host, port


def _address(setting: str, value: object) -> str:
    parse_address(setting, value)
    return str(value).strip()


def _text(setting: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(setting, f"expected a string, got {value!r}")
    if "\n" in value or "\x00" in value:
        raise ConfigError(setting, "must be a single line")
    return value.strip()


def _app_id(setting: str, value: object) -> str:
    text = _text(setting, str(value) if isinstance(value, int) and not isinstance(value, bool) else value)
    if text and not re.fullmatch(r"[1-9][0-9]*|Iv[0-9A-Za-z._-]+", text):
        raise ConfigError(setting, f"expected the App's numeric id or its client id (Iv...), got {text!r}")
    return text


def _api_url(setting: str, value: object) -> str:
    text = _text(setting, value).rstrip("/")
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", text):
        raise ConfigError(setting, f"expected an http(s) URL such as {DEFAULT_GITHUB_API}, got {value!r}")
    return text


def _branch(setting: str, value: object) -> str:
    """A branch name as `git check-ref-format --branch` accepts it, given short (`main`, `team/notes`)."""
    name = _text(setting, value)
    if name.startswith("refs/"):
        short = name.removeprefix("refs/heads/")
        raise ConfigError(setting, f"{name!r} is a full ref; give the branch name alone, such as {short!r}")
    if not name or name in ("HEAD", "@") or _BRANCH_BAD.search(name):
        raise ConfigError(setting, f"{name!r} is not a valid git branch name")
    return name


def _identity(setting: str, value: object) -> str:
    text = _text(setting, value)
    if not text or any(c in text for c in "<>"):
        raise ConfigError(setting, f"{text!r} cannot be used in a git identity")
    return text


def _patterns(setting: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\n]", value)]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(setting, f"expected a list of patterns, got {value!r}")
    patterns = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(setting, f"expected a pattern string, got {item!r}")
        if item.strip():
            patterns.append(item.strip())
    return tuple(patterns)


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "data_dir": _path,
    "git_dir": _path,
    "branch": _branch,
    "remote": _text,
    "debounce": parse_duration,
    "max_delay": _positive_duration,
    "observer": _choice(OBSERVERS),
    "poll_interval": _positive_duration,
    "reconcile_interval": parse_duration,
    "push_interval": _positive_duration,
    "push_backoff_max": _positive_duration,
    "push_timeout": _positive_duration,
    "allow_non_ff": _bool,
    "pull_interval": parse_duration,
    "pull_merge": _bool,
    "webhook_secret_file": _optional_path,
    "token_file": _optional_path,
    "github_app_id": _app_id,
    "github_app_installation_id": _count,
    "github_app_private_key_file": _optional_path,
    "github_api_url": _api_url,
    "allow_public": _bool,
    "git_ssh_command": _text,
    "shutdown_timeout": _positive_duration,
    "git_timeout": _positive_duration,
    "missing_data_timeout": parse_duration,
    "http": _address,
    "author_name": _identity,
    "author_email": _identity,
    "ignore": _patterns,
    "max_delete": _count,
    "max_batch_files": _positive_count,
    "lfs_threshold": parse_size,
    "max_file_size": parse_size,
    "log_format": _choice(LOG_FORMATS),
    "log_level": _choice(LOG_LEVELS),
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
