"""the fleet tables

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "git_organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "git_gitrepository",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source_url", sa.String(length=2000), nullable=False),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("is_mirror", sa.Boolean(), nullable=False),
        sa.Column("is_bare", sa.Boolean(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("credential", sa.String(length=100), nullable=False),
        sa.Column("local_path", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(), nullable=True),
        sa.Column("total_commits", sa.Integer(), nullable=False),
        sa.Column("last_commit_hash", sa.String(length=64), nullable=False),
        sa.Column("default_branch", sa.String(length=255), nullable=False),
        sa.Column("sync_interval", sa.Integer(), nullable=False),
        sa.Column("last_pushed_at", sa.DateTime(), nullable=True),
        sa.Column("last_event", sa.String(length=100), nullable=False),
        sa.Column("last_event_at", sa.DateTime(), nullable=True),
        sa.Column("holds", sa.Integer(), nullable=False),
        sa.Column("push_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["git_organisation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id", "name", name="uq_repository_organisation_name"),
    )
    with op.batch_alter_table("git_gitrepository", schema=None) as batch_op:
        batch_op.create_index("ix_repository_organisation_status", ["organisation_id", "status"], unique=False)
        batch_op.create_index("ix_repository_source_url", ["source_url"], unique=False)
        batch_op.create_index("ix_repository_status", ["status"], unique=False)

    op.create_table(
        "git_gitbranch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("commit_hash", sa.String(length=64), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["git_gitrepository.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "name", name="uq_branch_repository_name"),
    )
    with op.batch_alter_table("git_gitbranch", schema=None) as batch_op:
        batch_op.create_index("ix_branch_repository_default", ["repository_id", "is_default"], unique=False)

    op.create_table(
        "git_gitcommit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("author_name", sa.String(length=255), nullable=False),
        sa.Column("author_email", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("committed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["git_gitrepository.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "sha", name="uq_commit_repository_sha"),
    )
    with op.batch_alter_table("git_gitcommit", schema=None) as batch_op:
        batch_op.create_index("ix_commit_author_email", ["author_email"], unique=False)
        batch_op.create_index("ix_commit_repository_committed_at", ["repository_id", "committed_at"], unique=False)

    op.create_table(
        "git_synctask",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("commits_synced", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("retry_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["repository_id"], ["git_gitrepository.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
    )
    with op.batch_alter_table("git_synctask", schema=None) as batch_op:
        batch_op.create_index("ix_synctask_repository_status", ["repository_id", "status"], unique=False)
        batch_op.create_index("ix_synctask_status", ["status"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("git_synctask", schema=None) as batch_op:
        batch_op.drop_index("ix_synctask_status")
        batch_op.drop_index("ix_synctask_repository_status")

    op.drop_table("git_synctask")
    with op.batch_alter_table("git_gitcommit", schema=None) as batch_op:
        batch_op.drop_index("ix_commit_repository_committed_at")
        batch_op.drop_index("ix_commit_author_email")

    op.drop_table("git_gitcommit")
    with op.batch_alter_table("git_gitbranch", schema=None) as batch_op:
        batch_op.drop_index("ix_branch_repository_default")

    op.drop_table("git_gitbranch")
    with op.batch_alter_table("git_gitrepository", schema=None) as batch_op:
        batch_op.drop_index("ix_repository_status")
        batch_op.drop_index("ix_repository_source_url")
        batch_op.drop_index("ix_repository_organisation_status")

    op.drop_table("git_gitrepository")
    op.drop_table("git_organisation")
