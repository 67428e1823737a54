"""`committer fleet`: the repository manager's processes (up, api, worker, beat) and a client for every RPC
(create, migrate, sync, show, list, task, archive, org). The fleet's libraries are imported only when one of
these runs, so the plain `committer` commands never load them; without them, one line says what to install."""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from committer.cli.app import Argument, Exit, Option, echo, group
from committer.core.errors import CommitterError, ConfigError, redact

if TYPE_CHECKING:
    from committer.fleet.config import FleetConfig

PREFIX = "committer fleet: error:"
# Imported by the fleet: missing, the `fleet` extra is not installed.
LIBRARIES = {"grpc", "grpc_health", "grpc_reflection", "google", "sqlalchemy", "alembic", "celery", "kombu",
             "psycopg"}
DEFAULT_SERVER = "127.0.0.1:50051"
CPUS = os.cpu_count() or 1  # a worker's default concurrency, as Celery's

fleet = group("fleet", "Manage many repositories: create, migrate and sync them on workers (docs/fleet.md).")
org = group("org", "Organisations: `create SLUG`, `list`.", parent=fleet)


def _exit_code(body: Callable[[], int | None]) -> int:
    """Run a command's body: an expected failure is one line and its exit code, never a traceback."""
    try:
        return body() or 0
    except CommitterError as exc:
        echo(f"{PREFIX} {redact(exc.message)}", err=True)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in LIBRARIES:
            raise
        echo(f"{PREFIX} the fleet's libraries are not installed ({exc.name} is missing): "
             "pip install 'committer[fleet]'", err=True)
        return 2
    except KeyboardInterrupt:
        return 130


# The client commands

Server = Annotated[str, Option("--server", envvar="COMMITTER_FLEET_SERVER", metavar="HOST:PORT",
                               help="The fleet's gRPC API.")]
TokenFile = Annotated[str | None, Option("--token-file", envvar="COMMITTER_FLEET_API_TOKEN_FILE", metavar="PATH",
                                         help="File holding the API's bearer token.", show_default=False)]
TlsCa = Annotated[str | None, Option("--tls-ca", envvar="COMMITTER_FLEET_TLS_CA", metavar="PATH",
                                     help="CA certificate of a TLS server.", show_default=False)]
Json = Annotated[bool, Option("--json", help="Print the answer as JSON (protobuf's JSON mapping).")]
Repo = Annotated[str, Argument(help="The repository: its id or ORG/NAME.", metavar="REPOSITORY")]


def _client(server: str, token_file: str | None, tls_ca: str | None, json: bool,
            call: Callable[[Any, Any], str]) -> None:
    """Run one client command: `call(client_module, target)` returns what to print."""

    def body() -> None:
        from committer.fleet import client

        target = client.Target(server, Path(token_file) if token_file else None, Path(tls_ca) if tls_ca else None,
                               json)
        echo(call(client, target))

    raise Exit(_exit_code(body))


@fleet.command()
def create(
    name: Annotated[str, Argument(help="The repository's name (one path component).")],
    org_ref: Annotated[str, Option("--org", metavar="SLUG|ID", help="Its organisation.")] = "",
    source: Annotated[str, Option("--source", metavar="URL", help="Migrate from this URL (else: empty).")] = "",
    source_type: Annotated[str, Option("--source-type", help="github, gitlab, gitea or custom.")] = "",
    mirror: Annotated[bool, Option("--mirror", help="Mirror every ref of the source.")] = False,
    regular: Annotated[bool, Option("--regular", help="A repository with a work tree (not bare).")] = False,
    public: Annotated[bool, Option("--public", help="Mark it public.")] = False,
    credential: Annotated[str, Option("--credential", metavar="NAME",
                                      help="A credential's name in the fleet's credentials directory.")] = "",
    description: Annotated[str, Option("--description", help="What it holds.")] = "",
    sync_interval: Annotated[str, Option("--sync-interval", metavar="DURATION",
                                         help="Sync this often (default: the fleet's).")] = "",
    server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None, json: Json = False,
) -> None:
    """Create a repository: migrated from --source, or empty."""

    def call(client: Any, target: Any) -> str:
        return str(client.create(
            target, org_ref, name=name, description=description, source_url=source, source_type=source_type,
            is_public=public, is_mirror=mirror, is_bare=not regular, credential=credential,
            sync_interval=sync_interval))

    _client(server, token_file, tls_ca, json, call)


@fleet.command()
def migrate(
    repository: Repo,
    source: Annotated[str, Option("--source", metavar="URL", help="Migrate from this URL from now on.")] = "",
    force: Annotated[bool, Option("--force", help="Clone again from scratch.")] = False,
    server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None, json: Json = False,
) -> None:
    """Migrate (clone or mirror) a repository from its source."""
    _client(server, token_file, tls_ca, json, lambda c, t: c.migrate(t, repository, source, force))


@fleet.command()
def sync(repository: Repo, server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None,
         json: Json = False) -> None:
    """Sync a repository with its source now."""
    _client(server, token_file, tls_ca, json, lambda c, t: c.sync(t, repository))


@fleet.command()
def show(repository: Repo, server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None,
         json: Json = False) -> None:
    """A repository: status, source, last sync, commits, branches, error."""
    _client(server, token_file, tls_ca, json, lambda c, t: c.show(t, repository))


@fleet.command("list")
def list_(
    org_ref: Annotated[str, Option("--org", metavar="SLUG|ID", help="Only this organisation's.")] = "",
    status: Annotated[str, Option("--status", help="Only those with this status.")] = "",
    page_size: Annotated[int, Option("--page-size", help="One page of this many (default: every page).")] = 0,
    page_token: Annotated[str, Option("--page-token", help="The page a previous one named.")] = "",
    server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None, json: Json = False,
) -> None:
    """Repositories, one a line: id, org/name, status, last sync, commits, error."""
    _client(server, token_file, tls_ca, json,
            lambda c, t: c.repositories(t, org_ref, status, page_size, page_token))


@fleet.command()
def task(task_id: Annotated[str, Argument(help="The task's id (create, migrate and sync print it).")],
         server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None,
         json: Json = False) -> None:
    """A sync task: status, attempts, commits synced, error."""
    _client(server, token_file, tls_ca, json, lambda c, t: c.task(t, task_id))


@fleet.command()
def archive(repository: Repo, server: Server = DEFAULT_SERVER, token_file: TokenFile = None,
            tls_ca: TlsCa = None, json: Json = False) -> None:
    """Archive a repository: it stays on disk, no task runs on it again."""
    _client(server, token_file, tls_ca, json, lambda c, t: c.archive(t, repository))


@org.command("create")
def org_create(slug: Annotated[str, Argument(help="The organisation's slug (its directory's name).")],
               server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None,
               json: Json = False) -> None:
    """Create an organisation."""
    _client(server, token_file, tls_ca, json, lambda c, t: c.org_create(t, slug))


@org.command("list")
def org_list(server: Server = DEFAULT_SERVER, token_file: TokenFile = None, tls_ca: TlsCa = None,
             json: Json = False) -> None:
    """Every organisation: id and slug."""
    _client(server, token_file, tls_ca, json, lambda c, t: c.org_list(t))


# The processes

# The settings every process command takes as flags: (setting, flag, metavar, help), one row each; the
# command's function gets them as `flags` (setting -> value or None), read by fleet/config.py's `load`.
PROCESS_FLAGS = (
    ("repos_dir", "--repos-dir", "DIR", "Where repositories live, {org}/{name} (GIT_REPOS_DIR; /git)."),
    ("db", "--db", "URL", "State database (COMMITTER_FLEET_DB; SQLite in the repos dir)."),
    ("broker", "--broker", "URL", "Celery broker (CELERY_BROKER_URL; embedded, on local disk)."),
    ("grpc", "--grpc", "HOST:PORT", "The gRPC API's address (127.0.0.1:50051)."),
    ("http", "--http", "HOST:PORT", "Events, metrics and the overview page (127.0.0.1:8470)."),
    ("credentials_dir", "--credentials-dir", "DIR", "One file per credential name, or SSH keys."),
    ("api_token_file", "--api-token-file", "PATH", "The API's bearer token (required off loopback)."),
    ("tls_cert", "--tls-cert", "PATH", "Serve the API over TLS with this certificate."),
    ("tls_key", "--tls-key", "PATH", "The TLS key."),
)
_FLAG_PARAMETERS = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
    str | None, Option(flag, metavar=metavar, show_default=False, help=text)]) for name, flag, metavar, text in
    PROCESS_FLAGS]


def process_command(func: Callable[..., None]) -> Callable[..., None]:
    """Register a process command whose function takes `flags` and its own options: the rows of
    PROCESS_FLAGS become its --flags (after its own), handed to it as one mapping."""
    hints = typing.get_type_hints(func, include_extras=True)  # the module uses postponed annotations
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(func).parameters.values() if p.name != "flags"]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        flags = {name: kwargs.pop(name) for name, *_ in PROCESS_FLAGS}
        func(flags=flags, **kwargs)

    wrapper.__signature__ = inspect.Signature([*own, *_FLAG_PARAMETERS])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *_FLAG_PARAMETERS]}
    fleet.command()(wrapper)
    return func


Concurrency = Annotated[int, Option("--concurrency", metavar="N", help="Tasks run at once by the worker.")]


def _process(run: Callable[[Any, FleetConfig], int], flags: dict[str, object | None],
             concurrency: int | None = None) -> None:
    """Load the settings (flags < environment < defaults), then hand over to the process's function."""

    def body() -> int:
        from committer.fleet import config as fleet_config

        if concurrency is not None and concurrency < 1:
            raise ConfigError("--concurrency", f"must be at least 1, got {concurrency}")
        settings = fleet_config.load(flags, os.environ)
        from committer.fleet import processes

        processes.configure_logs(os.environ, "auto")
        return run(processes, settings)

    raise Exit(_exit_code(body))


@process_command
def up(flags: dict[str, object | None], concurrency: Concurrency = 1) -> None:
    """Run everything on this machine: the API, a worker and the scheduler (SQLite, embedded broker)."""
    _process(lambda p, config: int(p.up(config, concurrency)), flags, concurrency)


@process_command
def api(flags: dict[str, object | None]) -> None:
    """Run the gRPC API and the HTTP side (events, metrics, overview)."""
    _process(lambda p, config: int(p.api(config)), flags)


@process_command
def worker(flags: dict[str, object | None], concurrency: Concurrency = CPUS) -> None:
    """Run a worker: it takes tasks from the broker (run as many as wanted, where the repos dir is mounted)."""
    _process(lambda p, config: int(p.worker(config, concurrency)), flags, concurrency)


@process_command
def beat(flags: dict[str, object | None]) -> None:
    """Run the scheduler: it sends each active repository's sync when due (run one)."""
    _process(lambda p, config: int(p.beat(config)), flags)
