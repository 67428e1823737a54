"""The client side of `committer fleet`: each command makes one or two calls and returns what to print, as
short aligned lines for a person or as protobuf's JSON; a refusal becomes one line and an exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from committer.core import values
from committer.core.errors import CommitterError, ConfigError
from committer.fleet import fleet_pb2 as pb
from committer.fleet.rpc import CallFailed, Connection, Message, to_json

PAGE = 500
TOKEN_ENV = "COMMITTER_FLEET_API_TOKEN_FILE"
# A status code's name -> the CLI's exit code: 2 for what the user must change, 1 for the rest.
EXIT_CODES = {"INVALID_ARGUMENT": 2, "UNAUTHENTICATED": 2}


class Refused(CommitterError):
    """The server refused a call or could not be reached: one line, and the exit code of its status code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Target:
    """Where the fleet's API is and how to reach it, and how the answer is printed."""

    server: str
    token_file: Path | None = None
    tls_ca: Path | None = None
    json: bool = False


def refused(target: Target, failed: CallFailed) -> Refused:
    """A failed call as the one line the CLI prints."""
    if failed.code == "UNAVAILABLE":
        message = f"the fleet's API at {target.server} is unavailable: {failed.message}"
    elif failed.code == "DEADLINE_EXCEEDED":
        message = f"the fleet's API at {target.server} did not answer in time"
    elif failed.code == "UNAUTHENTICATED":
        message = f"{failed.message}; give --token-file (or {TOKEN_ENV})"
    else:
        message = failed.message or failed.code
    return Refused(message, EXIT_CODES.get(failed.code, 1))


def run(target: Target, body: Callable[[Connection], str]) -> str:
    """Open a connection, run the command's calls on it, and close it; a refusal raises Refused."""
    token = ""
    if target.token_file is not None:
        try:
            token = target.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError("--token-file", f"cannot read {target.token_file}: {exc.strerror}") from None
    try:
        with Connection(target.server, token, target.tls_ca) as connection:
            return body(connection)
    except CallFailed as exc:
        raise refused(target, exc) from None


# Resolving what the user typed


def organisation_id(connection: Connection, ref: str) -> int:
    """An organisation by id or slug."""
    if ref.isdigit():
        return int(ref)
    for org in connection.call("ListOrganisations", pb.ListOrganisationsRequest()).organisations:
        if org.slug == ref:
            return int(org.id)
    raise Refused(f"organisation {ref!r} does not exist", 1)


def repository_id(connection: Connection, ref: str) -> int:
    """A repository by id or ORG/NAME."""
    if ref.isdigit():
        return int(ref)
    slug, _, name = ref.partition("/")
    if not slug or not name:
        raise ConfigError("REPOSITORY", f"expected an id or ORG/NAME, got {ref!r}")
    for repo in pages(connection, pb.ListRepositoriesRequest(organisation_id=organisation_id(connection, slug))):
        if repo.name == name:
            return int(repo.id)
    raise Refused(f"repository {ref} does not exist", 1)


def pages(connection: Connection, request: pb.ListRepositoriesRequest) -> Iterator[pb.Repository]:
    """Every repository the request selects, page after page."""
    request.page_size = request.page_size or PAGE
    while True:
        answer = connection.call("ListRepositories", request)
        yield from answer.repositories
        if not answer.next_page_token:
            return
        request.page_token = answer.next_page_token


# Rendering


def when(value: str) -> str:
    return value.replace("T", " ").removesuffix("Z") + " UTC" if value else "never"


def one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[list[str]]) -> str:
    """Columns aligned on the widest cell; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def pairs(items: list[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in items) + 1
    return "\n".join(f"{key + ':':<{width}} {value}".rstrip() for key, value in items)


def repository_rows(repos: list[pb.Repository]) -> str:
    header = ["ID", "REPOSITORY", "STATUS", "LAST SYNC", "COMMITS", "ERROR"]
    rows = [[str(r.id), f"{r.organisation_slug}/{r.name}", r.status, when(r.last_synced_at), str(r.total_commits),
             one_line(r.error_message)] for r in repos]
    return table([header, *rows]) if rows else "no repositories"


def repository_text(repo: pb.Repository) -> str:
    kind = ("mirror" if repo.is_mirror else "clone") if repo.source_url else "empty"
    items = [
        ("id", str(repo.id)),
        ("repository", f"{repo.organisation_slug}/{repo.name}"),
        ("status", repo.status),
        ("source", f"{repo.source_url} ({repo.source_type}, {kind})" if repo.source_url else "none"),
        ("layout", f"{'bare' if repo.is_bare else 'regular'}, {'public' if repo.is_public else 'private'}"),
        ("path", repo.local_path),
        ("last sync", when(repo.last_synced_at)),
        ("commits", str(repo.total_commits)),
        ("head", f"{repo.default_branch} {repo.last_commit_hash[:12]}".strip() or "none"),
    ]
    optional = [
        ("branches", ", ".join(f"{b.name}{'*' if b.is_default else ''} {b.commit_hash[:12]}" for b in repo.branches)),
        ("description", one_line(repo.description, 100)),
        ("credential", repo.credential),
        ("sync interval", f"{repo.sync_interval}s" if repo.sync_interval else ""),
        ("last push", when(repo.last_pushed_at) if repo.last_pushed_at else ""),
        ("last event", repo.last_event),
        ("error", one_line(repo.error_message, 200)),
    ]
    return pairs(items + [(key, value) for key, value in optional if value])


def task_text(task: pb.SyncTask) -> str:
    items = [("task", task.task_id), ("repository", str(task.repository_id)), ("kind", task.kind),
             ("status", task.status), ("attempts", str(task.attempts)), ("commits synced", str(task.commits_synced)),
             ("started", when(task.started_at) if task.started_at else "not yet"),
             ("finished", when(task.finished_at) if task.finished_at else "not yet")]
    if task.error_message:
        items.append(("error", one_line(task.error_message, 200)))
    return pairs(items)


def shown(target: Target, message: Message, text: Callable[[Any], str]) -> str:
    return to_json(message) if target.json else text(message)


def with_message(answer: pb.RepositoryResponse) -> str:
    body = repository_text(answer.repository)
    return f"{answer.message}\n{body}" if answer.message else body


# The commands


def org_create(target: Target, slug: str) -> str:
    def body(c: Connection) -> str:
        org = c.call("CreateOrganisation", pb.CreateOrganisationRequest(slug=slug))
        return shown(target, org, lambda o: f"created organisation {o.slug} (id {o.id})")
    return run(target, body)


def org_list(target: Target) -> str:
    def body(c: Connection) -> str:
        answer = c.call("ListOrganisations", pb.ListOrganisationsRequest())
        return shown(target, answer, lambda a: table([["ID", "SLUG"], *([str(o.id), o.slug] for o in a.organisations)])
                     if a.organisations else "no organisations")
    return run(target, body)


def create(target: Target, org: str, sync_interval: str = "", **fields: Any) -> str:
    """CreateRepository with the request's fields; the organisation by slug or id, the interval a duration."""
    if not org:
        raise ConfigError("--org", "required: the organisation's slug or id (`committer fleet org list`)")
    interval = round(values.parse_duration("--sync-interval", sync_interval)) if sync_interval else 0

    def body(c: Connection) -> str:
        request = pb.CreateRepositoryRequest(organisation_id=organisation_id(c, org), sync_interval=interval,
                                             **fields)
        return shown(target, c.call("CreateRepository", request), with_message)
    return run(target, body)


def migrate(target: Target, repo: str, source: str, force: bool) -> str:
    def body(c: Connection) -> str:
        request = pb.MigrateRepositoryRequest(repository_id=repository_id(c, repo), source_url=source, force=force)
        return shown(target, c.call("MigrateRepository", request), lambda a: f"{a.message}\nstatus: {a.status}")
    return run(target, body)


def sync(target: Target, repo: str) -> str:
    def body(c: Connection) -> str:
        answer = c.call("SyncRepository", pb.SyncRepositoryRequest(repository_id=repository_id(c, repo)))
        return shown(target, answer, lambda a: f"{a.message}\nstatus: {a.status}")
    return run(target, body)


def show(target: Target, repo: str) -> str:
    def body(c: Connection) -> str:
        answer = c.call("GetRepository", pb.GetRepositoryRequest(repository_id=repository_id(c, repo)))
        return shown(target, answer, with_message)
    return run(target, body)


def archive(target: Target, repo: str) -> str:
    def body(c: Connection) -> str:
        answer = c.call("ArchiveRepository", pb.ArchiveRepositoryRequest(repository_id=repository_id(c, repo)))
        return shown(target, answer, with_message)
    return run(target, body)


def task(target: Target, task_id: str) -> str:
    def body(c: Connection) -> str:
        return shown(target, c.call("GetSyncTask", pb.GetSyncTaskRequest(task_id=task_id)), task_text)
    return run(target, body)


def repositories(target: Target, org: str, status: str, page_size: int, page_token: str) -> str:
    """Every repository (all pages), or with a page token or size just that one page and the next token."""
    def body(c: Connection) -> str:
        request = pb.ListRepositoriesRequest(organisation_id=organisation_id(c, org) if org else 0, status=status,
                                             page_size=page_size, page_token=page_token)
        if page_size or page_token:
            answer = c.call("ListRepositories", request)
            nxt = f"\nnext page: --page-token {answer.next_page_token}" if answer.next_page_token else ""
            return shown(target, answer, lambda a: repository_rows(list(a.repositories)) + nxt)
        every = pb.ListRepositoriesResponse(repositories=list(pages(c, request)))
        return shown(target, every, lambda a: repository_rows(list(a.repositories)))
    return run(target, body)
