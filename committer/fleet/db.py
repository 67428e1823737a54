"""The fleet's state as tables (SQLAlchemy's one home: the other fleet modules take its names from here).

The tables keep the seed's names and indexes (`git_gitrepository`, `git_gitbranch`, `git_gitcommit`,
`git_synctask`); Alembic owns the schema (fleet/schema.py), these classes only describe it. SQLite (one machine)
and PostgreSQL (several) are both first-class: nothing here is specific to either.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy import and_ as and_
from sqlalchemy import case as case
from sqlalchemy import delete as delete
from sqlalchemy import func as func
from sqlalchemy import insert as insert
from sqlalchemy import or_ as or_
from sqlalchemy import select as select
from sqlalchemy import update as update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine as Engine
from sqlalchemy.exc import ArgumentError as ArgumentError
from sqlalchemy.exc import IntegrityError as IntegrityError
from sqlalchemy.exc import OperationalError as OperationalError
from sqlalchemy.exc import SQLAlchemyError as SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker
from sqlalchemy.orm import Session as Session

__all__ = [
    "Base", "Engine", "FleetEvent", "GitBranch", "GitCommit", "GitRepository", "IntegrityError", "OperationalError",
    "Organisation", "Session", "SyncTask", "and_", "case", "delete", "engine", "func", "insert_new", "now", "or_",
    "select", "session", "update",
]

STATUSES = ("pending", "initializing", "mirroring", "active", "failed", "archived")
TASK_STATUSES = ("pending", "running", "retrying", "succeeded", "failed")
TASK_KINDS = ("initialize", "migrate", "sync")
SOURCE_TYPES = ("github", "gitlab", "gitea", "custom")


def now() -> datetime:
    """The time every row is stamped with: aware, UTC."""
    return datetime.now(UTC)


class UTCDateTime(DateTime):
    """A time stored without zone (SQLite keeps none) and always read back as UTC."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=False)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Organisation(Base):
    __tablename__ = "git_organisation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class GitRepository(Base):
    __tablename__ = "git_gitrepository"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name", name="uq_repository_organisation_name"),
        Index("ix_repository_organisation_status", "organisation_id", "status"),
        Index("ix_repository_source_url", "source_url"),
        Index("ix_repository_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("git_organisation.id"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    source_url: Mapped[str] = mapped_column(String(2000), default="")
    source_type: Mapped[str] = mapped_column(String(20), default="custom")
    is_mirror: Mapped[bool] = mapped_column(Boolean, default=False)
    is_bare: Mapped[bool] = mapped_column(Boolean, default=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    credential: Mapped[str] = mapped_column(String(100), default="")  # a name in the credentials directory
    local_path: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    error_message: Mapped[str] = mapped_column(Text, default="")
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    total_commits: Mapped[int] = mapped_column(Integer, default=0)
    last_commit_hash: Mapped[str] = mapped_column(String(64), default="")
    default_branch: Mapped[str] = mapped_column(String(255), default="")
    sync_interval: Mapped[int] = mapped_column(Integer, default=0)  # seconds; 0: the fleet's default
    # What a committer daemon pushing here reports through the fleet's /events endpoint.
    last_pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_event: Mapped[str] = mapped_column(String(100), default="")
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    holds: Mapped[int] = mapped_column(Integer, default=0)
    push_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    branches: Mapped[list[GitBranch]] = relationship(
        back_populates="repository", cascade="all, delete-orphan", order_by="GitBranch.name", lazy="selectin")


class GitBranch(Base):
    __tablename__ = "git_gitbranch"
    __table_args__ = (
        UniqueConstraint("repository_id", "name", name="uq_branch_repository_name"),
        Index("ix_branch_repository_default", "repository_id", "is_default"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("git_gitrepository.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    commit_hash: Mapped[str] = mapped_column(String(64))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    repository: Mapped[GitRepository] = relationship(back_populates="branches")


class GitCommit(Base):
    __tablename__ = "git_gitcommit"
    __table_args__ = (
        UniqueConstraint("repository_id", "sha", name="uq_commit_repository_sha"),
        Index("ix_commit_repository_committed_at", "repository_id", "committed_at"),
        Index("ix_commit_author_email", "author_email"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("git_gitrepository.id", ondelete="CASCADE"))
    sha: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(255), default="")
    author_email: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SyncTask(Base):
    __tablename__ = "git_synctask"
    __table_args__ = (
        Index("ix_synctask_repository_status", "repository_id", "status"),
        Index("ix_synctask_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), unique=True)  # also the Celery task's id
    repository_id: Mapped[int] = mapped_column(ForeignKey("git_gitrepository.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # initialize, migrate, sync
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    commits_synced: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # deliveries that claimed it, a killed one too
    retries: Mapped[int] = mapped_column(Integer, default=0)  # failures of its own it was retried after
    worker: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class FleetEvent(Base):
    """An event a committer daemon delivered to /events: kept by its id for a while, so that a delivery
    made again (the answer was lost, the daemon was killed before it noted it) is not counted twice."""

    __tablename__ = "git_fleetevent"
    __table_args__ = (
        UniqueConstraint("repository_id", "event_id", name="uq_fleetevent_repository_event"),
        Index("ix_fleetevent_repository_received", "repository_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("git_gitrepository.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(100), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


@event.listens_for(Base, "load", propagate=True)
@event.listens_for(Base, "refresh", propagate=True)
def _times_are_utc(target: Any, _context: Any, *_attrs: Any) -> None:
    """SQLite gives times back without a zone: every loaded time is made aware (UTC) here, once."""
    for column in target.__table__.columns:
        if isinstance(column.type, UTCDateTime):
            value = target.__dict__.get(column.key)
            if value is not None:
                target.__dict__[column.key] = _utc(value)


def engine(url: str) -> Engine:
    """An engine for the fleet's database URL; SQLite gets WAL and a busy timeout so that the API, the
    workers and the scheduler (separate processes) can share one file."""
    if url.startswith("sqlite"):
        made = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(made, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return made
    return create_engine(url, pool_pre_ping=True)


_makers: weakref.WeakKeyDictionary[Engine, sessionmaker[Session]] = weakref.WeakKeyDictionary()


@contextmanager
def session(made: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises. The session factory is
    made once per engine (making one sets up a class and its events: a millisecond, every time)."""
    maker = _makers.get(made)
    if maker is None:
        maker = _makers[made] = sessionmaker(made, expire_on_commit=False)
    with maker() as opened, opened.begin():
        yield opened


def insert_new(opened: Session, table: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert rows, leaving out those a unique constraint already holds (a commit imported before)."""
    if not rows:
        return
    dialect = opened.get_bind().dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    opened.execute(maker(table).on_conflict_do_nothing(), rows)
