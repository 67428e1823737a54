"""The fleet's settings: flags < environment < defaults, checked once; a bad value is one line naming it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from committer.core import values
from committer.core.errors import ConfigError

DEFAULT_REPOS_DIR = Path("/git")
DEFAULT_GRPC = "127.0.0.1:50051"
DEFAULT_HTTP = "127.0.0.1:8470"
LOOPBACK = ("127.0.0.1", "::1", "localhost")

# setting -> its environment variable (the seed's names where it has them)
ENV = {
    "repos_dir": "GIT_REPOS_DIR",
    "db": "COMMITTER_FLEET_DB",
    "broker": "CELERY_BROKER_URL",
    "result_backend": "CELERY_RESULT_BACKEND",
    "grpc": "COMMITTER_FLEET_GRPC",
    "http": "COMMITTER_FLEET_HTTP",
    "credentials_dir": "COMMITTER_FLEET_CREDENTIALS_DIR",
    "retry_base": "COMMITTER_FLEET_RETRY_BASE",
    "sync_interval": "COMMITTER_FLEET_SYNC_INTERVAL",
    "lease": "COMMITTER_FLEET_LEASE",
    "api_token_file": "COMMITTER_FLEET_API_TOKEN_FILE",
    "tls_cert": "COMMITTER_FLEET_TLS_CERT",
    "tls_key": "COMMITTER_FLEET_TLS_KEY",
    "server": "COMMITTER_FLEET_SERVER",
    "git_timeout": "COMMITTER_FLEET_GIT_TIMEOUT",
    "git_stall": "COMMITTER_FLEET_GIT_STALL",
    "task_retention": "COMMITTER_FLEET_TASK_RETENTION",
}


@dataclass(frozen=True)
class FleetConfig:
    """Where repositories, state and the queue live, where the API listens, and the task timings."""

    repos_dir: Path = DEFAULT_REPOS_DIR
    db: str = ""  # empty: sqlite:///<repos_dir>/.fleet/fleet.db
    broker: str = ""  # empty: the embedded broker, sqla+sqlite:///<repos_dir>/.fleet/broker.db
    result_backend: str = ""  # empty: none (the database keeps every task's state)
    grpc: str = DEFAULT_GRPC
    http: str = DEFAULT_HTTP
    credentials_dir: Path | None = None
    retry_base: float = 60.0  # retries after base, 2*base, 4*base
    sync_interval: float = 900.0  # the scheduler's default; a repository can override it
    lease: float = 30.0  # a running task not heard from for this long is sent again
    api_token_file: Path | None = None  # required when the API listens off loopback
    tls_cert: Path | None = None
    tls_key: Path | None = None
    server: str = DEFAULT_GRPC  # where the CLI client connects
    git_timeout: float = 1800.0  # a task's time limit: 30 minutes
    git_stall: float = 120.0  # a network git call that neither computes nor moves a byte this long is stopped
    task_retention: float = 30 * 86400.0  # finished tasks older than this are pruned by the beat

    @property
    def state_dir(self) -> Path:
        return self.repos_dir / ".fleet"

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.state_dir / 'fleet.db'}"

    @property
    def broker_url(self) -> str:
        return self.broker or f"sqla+sqlite:///{self.state_dir / 'broker.db'}"

    @property
    def embedded(self) -> bool:
        return not self.broker

    def grpc_address(self) -> tuple[str, int]:
        return _address("grpc", self.grpc)

    def http_address(self) -> tuple[str, int]:
        return _address("http", self.http)


def _address(setting: str, value: str) -> tuple[str, int]:
    parsed = values.parse_address(setting, value)
    if parsed is None:
        raise ConfigError(setting, "expected HOST:PORT such as 127.0.0.1:50051")
    return parsed


def _path(setting: str, value: object) -> Path:
    return values.path(setting, value)


def _optional(setting: str, value: object) -> Path | None:
    return values.optional_path(setting, value)


def _url(setting: str, value: object) -> str:
    text = values.line(setting, value)
    if text and "://" not in text:
        # Not repeated: without its scheme, a user:password@ in it would not be recognised and removed.
        raise ConfigError(setting, "expected a URL with its scheme, such as redis://127.0.0.1:6379/0")
    return text


def _retention(setting: str, value: object) -> float:
    """A duration as everywhere (720h), or whole days (30d): how long finished tasks are kept."""
    text = str(value).strip()
    if text.endswith("d") and text[:-1].isdigit():
        value = int(text[:-1]) * 86400
    return values.positive_duration(setting, value)


PARSERS = {
    "repos_dir": _path,
    "db": _url,
    "broker": _url,
    "result_backend": _url,
    "grpc": values.address,
    "http": values.address,
    "credentials_dir": _optional,
    "retry_base": values.positive_duration,
    "sync_interval": values.positive_duration,
    "lease": values.positive_duration,
    "api_token_file": _optional,
    "tls_cert": _optional,
    "tls_key": _optional,
    "server": values.address,
    "git_timeout": values.positive_duration,
    "git_stall": values.positive_duration,
    "task_retention": _retention,
}


def load(flags: Mapping[str, object | None], environ: Mapping[str, str] | None = None) -> FleetConfig:
    """Defaults < environment < flags (a flag left out is None), each value checked by its parser."""
    env = os.environ if environ is None else environ
    given: dict[str, object] = {}
    for key, parse in PARSERS.items():
        raw = flags.get(key)
        if raw is None:
            raw = env.get(ENV[key]) or None
        if raw is not None:
            given[key] = parse(key, raw)
    config = replace(FleetConfig(), **given)  # type: ignore[arg-type]
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("tls_cert", "tls_cert and tls_key go together: give both or neither")
    host = config.grpc_address()[0]
    if host not in LOOPBACK and config.api_token_file is None:
        raise ConfigError("api_token_file", f"the API listens on {host}, off loopback: it needs --api-token-file")
    return config
