"""job plates_found

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, like faces_found: jobs finished before this revision were never counted, and null says so
    # where 0 would claim that no plate was there.
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plates_found', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('plates_found')
