"""message_log.delivered_at: Telegram replies are sent after the commit, and marked when sent

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    # Replies logged before this revision were sent before their update was confirmed: they
    # count as delivered, so the first start after the upgrade does not send them again.
    op.execute(
        "UPDATE message_log SET delivered_at = created_at "
        "WHERE direction = 'out' AND channel = 'telegram'"
    )


def downgrade() -> None:
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.drop_column("delivered_at")
