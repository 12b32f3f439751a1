"""indexes for the follow-up sweep: services by date, rating requests by status

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_records_performed_at"), ["performed_at"], unique=False
        )
    with op.batch_alter_table("rating_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rating_requests_status_created_at"),
            ["status", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("rating_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rating_requests_status_created_at"))
    with op.batch_alter_table("service_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_records_performed_at"))
