"""the events committer daemons delivered (their ids, against double counting)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "git_fleetevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["git_gitrepository.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "event_id", name="uq_fleetevent_repository_event"),
    )
    with op.batch_alter_table("git_fleetevent", schema=None) as batch_op:
        batch_op.create_index("ix_fleetevent_repository_received", ["repository_id", "received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("git_fleetevent", schema=None) as batch_op:
        batch_op.drop_index("ix_fleetevent_repository_received")

    op.drop_table("git_fleetevent")
