"""RepositoryService's logic, without the transport: each RPC is a method taking the request message and
returning the answer, calling the store and handing new tasks to `send`; what it refuses it raises as a
FleetError, whose kind becomes a gRPC code in rpc.py (CODES)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from committer.core.errors import redact
from committer.fleet import fleet_pb2 as pb
from committer.fleet import rules
from committer.fleet.db import STATUSES, GitRepository, SyncTask
from committer.fleet.store import NewRepository, Store

# A FleetError's kind -> the gRPC status code's name (rpc.py turns the name into grpc.StatusCode).
CODES = {
    "invalid": "INVALID_ARGUMENT",
    "not_found": "NOT_FOUND",
    "exists": "ALREADY_EXISTS",
    "archived": "FAILED_PRECONDITION",
    "unavailable": "UNAVAILABLE",
}
METHODS = (
    "CreateOrganisation", "ListOrganisations", "CreateRepository", "MigrateRepository", "SyncRepository",
    "GetRepository", "ListRepositories", "GetSyncTask", "ArchiveRepository",
)
MAX_INTERVAL = 365 * 24 * 3600  # sync_interval is an int32 of seconds; a year is already more than anyone means

Send = Callable[[SyncTask], None]


class Precondition(rules.Archived):
    """Work the repository's state does not allow (archived, or no source to sync from)."""


class NotQueued(rules.FleetError):
    """The task was recorded but the broker did not take it."""

    kind = "unavailable"


def rfc3339(value: datetime | None) -> str:
    """A time as RFC 3339 in UTC (`2025-01-31T12:00:00Z`); '' when unset."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def repository_message(repo: GitRepository) -> pb.Repository:
    """A repository row as the API's message: the credential by its name only, times as RFC 3339."""
    return pb.Repository(
        id=repo.id, name=repo.name, description=repo.description, organisation_id=repo.organisation_id,
        organisation_slug=repo.organisation.slug, source_url=repo.source_url, source_type=repo.source_type,
        is_mirror=repo.is_mirror, is_bare=repo.is_bare, is_public=repo.is_public, local_path=repo.local_path,
        status=repo.status, error_message=redact(repo.error_message), last_synced_at=rfc3339(repo.last_synced_at),
        total_commits=repo.total_commits, last_commit_hash=repo.last_commit_hash,
        default_branch=repo.default_branch, credential=repo.credential, sync_interval=repo.sync_interval,
        last_pushed_at=rfc3339(repo.last_pushed_at), last_event=repo.last_event,
        branches=[pb.Branch(name=b.name, commit_hash=b.commit_hash, is_default=b.is_default) for b in repo.branches],
    )


def task_message(task: SyncTask) -> pb.SyncTask:
    return pb.SyncTask(
        task_id=task.task_id, repository_id=task.repository_id, status=task.status, kind=task.kind,
        commits_synced=task.commits_synced, error_message=redact(task.error_message), attempts=task.attempts,
        started_at=rfc3339(task.started_at), finished_at=rfc3339(task.finished_at),
    )


def full_name(repo: GitRepository) -> str:
    return f"{repo.organisation.slug}/{repo.name}"


class RepositoryApi:
    """The service's methods, named as the RPCs are (rpc.py registers each name in METHODS)."""

    def __init__(self, store: Store, send: Send) -> None:
        self.store = store
        self.send = send

    # Organisations

    def CreateOrganisation(self, request: pb.CreateOrganisationRequest) -> pb.Organisation:
        org = self.store.create_organisation(request.slug)
        return pb.Organisation(id=org.id, slug=org.slug)

    def ListOrganisations(self, request: pb.ListOrganisationsRequest) -> pb.ListOrganisationsResponse:
        return pb.ListOrganisationsResponse(
            organisations=[pb.Organisation(id=org.id, slug=org.slug) for org in self.store.organisations()])

    # Repositories

    def CreateRepository(self, request: pb.CreateRepositoryRequest) -> pb.RepositoryResponse:
        if request.organisation_id <= 0:
            raise rules.Invalid("organisation_id: required (an organisation's id; see ListOrganisations)")
        if not 0 <= request.sync_interval <= MAX_INTERVAL:
            raise rules.Invalid(f"sync_interval: {request.sync_interval}; between 0 (the fleet's default) "
                                f"and {MAX_INTERVAL} seconds")
        repo = self.store.create_repository(NewRepository(
            name=request.name, organisation_id=request.organisation_id, description=request.description,
            source_url=request.source_url, source_type=request.source_type, is_public=request.is_public,
            is_mirror=request.is_mirror, is_bare=request.is_bare, credential=request.credential,
            sync_interval=request.sync_interval,
        ))
        kind = "migrate" if repo.source_url else "initialize"
        task = self._queue(repo.id, kind, repo=repo)
        what = "migration" if kind == "migrate" else "initialisation"
        return pb.RepositoryResponse(
            repository=repository_message(repo),
            message=f"created {full_name(repo)}; {what} queued as task {task.task_id}")

    def MigrateRepository(self, request: pb.MigrateRepositoryRequest) -> pb.MigrationResponse:
        repo = self._workable(request.repository_id)
        if request.source_url:
            url = rules.source_url(request.source_url)
            if url != repo.source_url:
                self.store.set_source(repo.id, url)
        elif not repo.source_url:
            raise Precondition(f"repository {full_name(repo)} has no source_url: give one to migrate from")
        task = self._queue(repo.id, "migrate", force=request.force, repo=repo)
        again = " (forced: re-cloned from scratch)" if request.force else ""
        return pb.MigrationResponse(repository_id=repo.id, status=task.status, task_id=task.task_id,
                                    message=f"migration of {full_name(repo)} queued as task {task.task_id}{again}")

    def SyncRepository(self, request: pb.SyncRepositoryRequest) -> pb.SyncResponse:
        repo = self._workable(request.repository_id)
        if not repo.source_url:
            raise Precondition(f"repository {full_name(repo)} has no source_url to sync from; migrate it first")
        task = self._queue(repo.id, "sync", repo=repo)
        return pb.SyncResponse(repository_id=repo.id, status=task.status, task_id=task.task_id,
                               commits_synced=task.commits_synced,
                               message=f"sync of {full_name(repo)} queued as task {task.task_id}")

    def GetRepository(self, request: pb.GetRepositoryRequest) -> pb.RepositoryResponse:
        return pb.RepositoryResponse(repository=repository_message(self._repository(request.repository_id)))

    def ListRepositories(self, request: pb.ListRepositoriesRequest) -> pb.ListRepositoriesResponse:
        if request.status and request.status not in STATUSES:
            raise rules.Invalid(f"status: {request.status!r} is not one of {', '.join(STATUSES)}")
        if request.organisation_id < 0:
            raise rules.Invalid(f"organisation_id: {request.organisation_id}; 0 for every organisation")
        rows, token = self.store.repositories(request.organisation_id, request.status, request.page_size,
                                              request.page_token)
        return pb.ListRepositoriesResponse(repositories=[repository_message(r) for r in rows], next_page_token=token)

    def GetSyncTask(self, request: pb.GetSyncTaskRequest) -> pb.SyncTask:
        if not request.task_id:
            raise rules.Invalid("task_id: must not be empty")
        return task_message(self.store.task(request.task_id))

    def ArchiveRepository(self, request: pb.ArchiveRepositoryRequest) -> pb.RepositoryResponse:
        repo = self._repository(request.repository_id)
        if repo.status == "archived":
            return pb.RepositoryResponse(repository=repository_message(repo),
                                         message=f"{full_name(repo)} was already archived")
        archived = self.store.archive(repo.id)
        return pb.RepositoryResponse(repository=repository_message(archived),
                                     message=f"archived {full_name(archived)}: no task will run on it")

    # Helpers

    def _repository(self, repo_id: int) -> GitRepository:
        if repo_id <= 0:
            raise rules.Invalid("repository_id: required (a repository's id)")
        return self.store.repository(repo_id)

    def _workable(self, repo_id: int) -> GitRepository:
        repo = self._repository(repo_id)
        if repo.status == "archived":
            raise Precondition(f"repository {full_name(repo)} is archived: no task runs on it")
        return repo

    def _queue(self, repo_id: int, kind: str, force: bool = False, repo: GitRepository | None = None) -> SyncTask:
        """Record the task, then hand it to the broker; a task the broker refused is marked failed."""
        task = self.store.new_task(repo_id, kind, force=force, repo=repo)
        try:
            self.send(task)
        except Exception as exc:
            problem = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self.store.update_task(task.task_id, status="failed", error_message=f"not queued: {problem}")
            raise NotQueued(f"task {task.task_id} was recorded but not queued: {problem}") from None
        return task

