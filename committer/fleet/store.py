"""Every read and write of the fleet's state, in one place: the API, the workers, the scheduler and the pages
call these; none of them writes a query of its own. Rows come back detached (loaded, safe to read after the
session closed)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from committer.fleet import rules
from committer.fleet.db import (
    Engine,
    FleetEvent,
    GitBranch,
    GitCommit,
    GitRepository,
    IntegrityError,
    Organisation,
    SyncTask,
    and_,
    case,
    delete,
    func,
    insert,
    insert_new,
    now,
    or_,
    select,
    session,
    update,
)
from committer.fleet.taskrows import TASK_BUCKETS as TASK_BUCKETS
from committer.fleet.taskrows import Durations as Durations
from committer.fleet.taskrows import TaskRows, aware

DEFAULT_PAGE, MAX_PAGE = 50, 500
COMMIT_BATCH = 1000
EVENT_MEMORY = timedelta(days=30)  # how long a delivered event's id is kept against a delivery made again


@dataclass(frozen=True)
class NewRepository:
    name: str
    organisation_id: int
    description: str = ""
    source_url: str = ""
    source_type: str = "custom"
    is_public: bool = False
    is_mirror: bool = False
    is_bare: bool = True
    credential: str = ""
    sync_interval: int = 0


@dataclass(frozen=True)
class Reported:
    """What one event of a committer daemon changes on its repository's row."""

    event_id: str
    event: str
    at: datetime
    commit: str = ""  # the repository's new head
    commits: int = 0  # commits added
    pushed: bool = False  # a push succeeded: last_pushed_at, and the failures start again from 0
    push_failures: int | None = None  # failed pushes in a row, as the daemon counts them
    holds: int = 0  # paths held (positive) or released (negative)


@dataclass(frozen=True)
class BranchState:
    name: str
    commit_hash: str
    is_default: bool


class Store(TaskRows):
    """The fleet's state in one database; `repos_dir` is where repositories live ({slug}/{name})."""

    def __init__(self, engine: Engine, repos_dir: Path) -> None:
        self.engine = engine
        self.repos_dir = repos_dir

    # Organisations

    def create_organisation(self, slug: str) -> Organisation:
        rules.name(slug, "slug")
        try:
            with session(self.engine) as db:
                org = Organisation(slug=slug)
                db.add(org)
                db.flush()
                return org
        except IntegrityError:
            raise rules.Exists(f"organisation {slug!r} exists") from None

    def organisations(self) -> list[Organisation]:
        with session(self.engine) as db:
            return list(db.scalars(select(Organisation).order_by(Organisation.id)))

    def organisation(self, org_id: int) -> Organisation:
        with session(self.engine) as db:
            org = db.get(Organisation, org_id)
            if org is None:
                raise rules.NotFound(f"organisation {org_id} does not exist")
            return org

    # Repositories

    def create_repository(self, new: NewRepository) -> GitRepository:
        """A new repository row, pending, in one transaction (its organisation read in the same one)."""
        rules.name(new.name)
        fields = dict(new.__dict__)
        fields["source_url"] = rules.source_url(new.source_url)
        fields["source_type"] = rules.source_type(new.source_type)
        fields["description"] = rules.description(new.description)
        fields["credential"] = rules.credential(new.credential)
        if new.sync_interval < 0:
            raise rules.Invalid("sync_interval: must not be negative")
        shown = f"{new.organisation_id}/{new.name}"
        try:
            with session(self.engine) as db:
                org = db.get(Organisation, new.organisation_id)
                if org is None:
                    raise rules.NotFound(f"organisation {new.organisation_id} does not exist")
                shown = f"{org.slug}/{new.name}"
                rules.local_source(fields["source_url"], self.repos_dir, org.slug, new.name)
                local = self.repos_dir / org.slug / new.name
                # Both relationships given: the row is whole after the flush, with no query to read it back.
                repo = GitRepository(**fields, local_path=str(local), status="pending", organisation=org,
                                     branches=[])
                db.add(repo)
                db.flush()
                return repo
        except IntegrityError:
            raise rules.Exists(f"repository {shown} exists") from None

    def repository(self, repo_id: int) -> GitRepository:
        with session(self.engine) as db:
            return self._load(db, repo_id)

    def find(self, slug: str, name: str) -> GitRepository:
        with session(self.engine) as db:
            repo = db.scalar(select(GitRepository).join(Organisation).where(
                and_(Organisation.slug == slug, GitRepository.name == name)))
            if repo is None:
                raise rules.NotFound(f"repository {slug}/{name} does not exist")
            return repo

    def repositories(self, organisation_id: int = 0, status: str = "", page_size: int = 0,
                     page_token: str = "") -> tuple[list[GitRepository], str]:
        """One page in id order, and the token of the next ('' after the last): a page costs the same
        however deep it lies (keyset, not offset)."""
        size = page_size or DEFAULT_PAGE
        if size < 0 or size > MAX_PAGE:
            raise rules.Invalid(f"page_size: {page_size}; between 1 and {MAX_PAGE}")
        after = _token_id(page_token)
        query = select(GitRepository).where(GitRepository.id > after)
        if organisation_id:
            query = query.where(GitRepository.organisation_id == organisation_id)
        if status:
            query = query.where(GitRepository.status == status)
        with session(self.engine) as db:
            rows = list(db.scalars(query.order_by(GitRepository.id).limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
        return rows, (_token(rows[-1].id) if more else "")

    def set_status(self, repo_id: int, status: str, error: str = "", **fields: Any) -> None:
        with session(self.engine) as db:
            db.execute(update(GitRepository).where(GitRepository.id == repo_id).values(
                status=status, error_message=error, updated_at=now(), **fields))

    def settle(self, repo_id: int, status: str, error: str = "") -> None:
        """Set a repository's status and error from a task's outcome, unless it was archived meanwhile (an
        archived repository stays archived whatever a task still running on it does)."""
        with session(self.engine) as db:
            db.execute(update(GitRepository).where(and_(
                GitRepository.id == repo_id, GitRepository.status != "archived")).values(
                status=status, error_message=error, updated_at=now()))

    def set_source(self, repo_id: int, source_url: str) -> None:
        """Point a repository at another source (a migration from elsewhere)."""
        checked = rules.source_url(source_url)
        repo = self.repository(repo_id)
        rules.local_source(checked, self.repos_dir, repo.organisation.slug, repo.name)
        with session(self.engine) as db:
            db.execute(update(GitRepository).where(GitRepository.id == repo_id).values(
                source_url=checked, updated_at=now()))

    def archive(self, repo_id: int) -> GitRepository:
        self.set_status(self.repository(repo_id).id, "archived")
        return self.repository(repo_id)

    def record_snapshot(self, repo_id: int, branches: Iterable[BranchState], total_commits: int,
                        last_commit_hash: str, default_branch: str, synced_at: datetime | None = None) -> None:
        """The repository's branches (replaced whole), its commit count and head after a migration or sync."""
        with session(self.engine) as db:
            self._snapshot(db, repo_id, branches, total_commits, last_commit_hash, default_branch, synced_at)

    def finish(self, repo_id: int, task_id: str, snapshot: tuple[Iterable[BranchState], int, str, str],
               commits_synced: int, commits: list[dict[str, Any]] | None = None) -> None:
        """A task succeeded, in one transaction: the last of its `commits` (as add_commits takes them), the
        repository's snapshot (branches, commit count, head, default branch), its status active (unless
        archived meanwhile), the task succeeded."""
        with session(self.engine) as db:
            insert_new(db, GitCommit, [{**commit, "repository_id": repo_id} for commit in commits or ()])
            self._snapshot(db, repo_id, *snapshot, status="active")
            db.execute(update(SyncTask).where(SyncTask.task_id == task_id).values(
                status="succeeded", commits_synced=commits_synced, finished_at=now(), error_message="")
                .execution_options(synchronize_session=False))

    @staticmethod
    def _snapshot(db: Any, repo_id: int, branches: Iterable[BranchState], total_commits: int,
                  last_commit_hash: str, default_branch: str, synced_at: datetime | None = None,
                  status: str = "") -> None:
        """Statements, not loaded rows: the branches deleted and inserted again (in that order, so a name kept
        never meets itself in the unique constraint), the repository's fields in one UPDATE; with `status`,
        its status too (and its error cleared) unless it is archived."""
        at = now()
        fields: dict[str, Any] = {"total_commits": total_commits, "last_commit_hash": last_commit_hash,
                                  "default_branch": default_branch, "last_synced_at": synced_at or at,
                                  "updated_at": at}
        if status:
            fields.update(_settled(status))
        done = db.execute(update(GitRepository).where(GitRepository.id == repo_id).values(**fields)
                          .execution_options(synchronize_session=False))
        if not done.rowcount:
            raise rules.NotFound(f"repository {repo_id} does not exist")
        db.execute(delete(GitBranch).where(GitBranch.repository_id == repo_id)
                   .execution_options(synchronize_session=False))
        rows = [{"repository_id": repo_id, "name": b.name, "commit_hash": b.commit_hash, "is_default": b.is_default}
                for b in branches]
        if rows:
            db.execute(insert(GitBranch), rows)

    def unchanged(self, repo_id: int, task_id: str) -> None:
        """A sync found nothing new, in one transaction: the time of the last sync, the repository active
        (unless archived meanwhile), the task succeeded with no commits."""
        with session(self.engine) as db:
            at = now()
            db.execute(update(GitRepository).where(GitRepository.id == repo_id).values(
                last_synced_at=at, updated_at=at, **_settled("active")).execution_options(synchronize_session=False))
            db.execute(update(SyncTask).where(SyncTask.task_id == task_id).values(
                status="succeeded", commits_synced=0, finished_at=at, error_message="")
                .execution_options(synchronize_session=False))

    def add_commits(self, repo_id: int, commits: Iterable[dict[str, Any]]) -> int:
        """Store commits (sha, author_name, author_email, subject, committed_at) in batches, leaving out those
        already stored; memory stays bounded by one batch however long the history."""
        count, batch = 0, []
        for commit in commits:
            batch.append({**commit, "repository_id": repo_id})
            if len(batch) >= COMMIT_BATCH:
                count += self._insert(batch)
                batch = []
        return count + self._insert(batch)

    def _insert(self, batch: list[dict[str, Any]]) -> int:
        if batch:
            with session(self.engine) as db:
                insert_new(db, GitCommit, batch)
        return len(batch)

    def commit_count(self, repo_id: int) -> int:
        with session(self.engine) as db:
            return db.scalar(select(func.count()).select_from(GitCommit).where(
                GitCommit.repository_id == repo_id)) or 0

    def apply_event(self, repo_id: int, reported: Reported) -> bool:
        """Apply a delivered event to its repository's row, once: False, changing nothing, when an event
        with that id was applied before. Ids are kept EVENT_MEMORY."""
        try:
            with session(self.engine) as db:
                # The id first: a delivery made again stops here (IntegrityError), having changed nothing.
                db.add(FleetEvent(repository_id=repo_id, event_id=reported.event_id, event=reported.event))
                db.flush()
                # One UPDATE of the counters, never read and written back: concurrent events all count.
                held = GitRepository.holds + reported.holds
                fields: dict[str, Any] = {
                    "last_event": reported.event, "last_event_at": reported.at,
                    "total_commits": GitRepository.total_commits + max(0, reported.commits),
                    "holds": case((held < 0, 0), else_=held)}
                if reported.commit:
                    fields["last_commit_hash"] = reported.commit
                if reported.pushed:
                    fields.update(last_pushed_at=reported.at, push_failures=0)
                if reported.push_failures is not None:
                    fields["push_failures"] = max(0, reported.push_failures)
                done = db.execute(update(GitRepository).where(GitRepository.id == repo_id).values(**fields))
                if not done.rowcount:  # type: ignore[attr-defined]
                    raise rules.NotFound(f"repository {repo_id} does not exist")
                db.execute(delete(FleetEvent).where(and_(
                    FleetEvent.repository_id == repo_id, FleetEvent.received_at < now() - EVENT_MEMORY)))
            return True
        except IntegrityError:
            self.repository(repo_id)  # NotFound when the repository is gone
            return False

    def ping(self) -> None:
        """Whether the database answers: returns, or raises the driver's error."""
        with session(self.engine) as db:
            db.execute(select(1))

    def schedulable(self, default_interval: int) -> list[tuple[int, int, datetime | None]]:
        """(id, interval, last_synced_at) of every repository the scheduler keeps synced: active with a source,
        or failed with a source after a migration that once succeeded (a later sync recovers it)."""
        with session(self.engine) as db:
            rows = db.execute(select(GitRepository.id, GitRepository.sync_interval, GitRepository.last_synced_at)
                              .where(and_(GitRepository.source_url != "", or_(
                                  GitRepository.status == "active",
                                  and_(GitRepository.status == "failed", GitRepository.last_synced_at.is_not(None))))))
            return [(row[0], row[1] or default_interval, aware(row[2])) for row in rows]

    @staticmethod
    def _load(db: Any, repo_id: int) -> GitRepository:
        query = select(GitRepository).where(GitRepository.id == repo_id)
        repo = db.scalar(query.execution_options(populate_existing=True))
        if repo is None:
            raise rules.NotFound(f"repository {repo_id} does not exist")
        return repo  # type: ignore[no-any-return]



def _settled(status: str) -> dict[str, Any]:
    """An UPDATE's values that set a repository's status (its error cleared) unless it is archived: an archived
    repository stays archived whatever a task still running on it does."""
    archived = GitRepository.status == "archived"
    return {"status": case((archived, GitRepository.status), else_=status),
            "error_message": case((archived, GitRepository.error_message), else_="")}


def _token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def _token_id(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "after" or not number.isdigit() or len(number) > 18:  # an id the database can hold
            raise ValueError(text)
        return int(number)
    except ValueError:
        raise rules.Invalid(f"page_token: {token!r} is not a token this server gave") from None
