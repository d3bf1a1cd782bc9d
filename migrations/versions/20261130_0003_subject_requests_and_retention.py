"""subject requests and retention

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('subject_request',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('subject_ref_hashes', sa.JSON(), nullable=False),
    sa.Column('recorded_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('job_ids', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('extension_months', sa.Integer(), nullable=False),
    sa.Column('extension_reason', sa.String(length=1000), nullable=True),
    sa.Column('extended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sweep_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('matched_job_ids', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('receipt', sa.JSON(), nullable=True),
    sa.Column('receipt_sha256', sa.String(length=64), nullable=True),
    sa.Column('archive_key', sa.String(length=512), nullable=True),
    sa.Column('archive_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('received', 'in_progress', 'sweeping', 'completed', 'failed')",
                       name=op.f('ck_subject_request_status_known')),
    sa.CheckConstraint("type IN ('erasure', 'access')", name=op.f('ck_subject_request_type_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_subject_request_tenant_id_tenant'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject_request'))
    )
    with op.batch_alter_table('subject_request', schema=None) as batch_op:
        batch_op.create_index('ix_subject_request_status', ['status', 'sweep_after'], unique=False)
        batch_op.create_index('ix_subject_request_tenant_received', ['tenant_id', 'received_at'], unique=False)

    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('output_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_job_tenant_recorded', ['tenant_id', 'recorded_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_tenant_recorded')
        batch_op.drop_column('recorded_at')
        batch_op.drop_column('output_expires_at')

    with op.batch_alter_table('subject_request', schema=None) as batch_op:
        batch_op.drop_index('ix_subject_request_tenant_received')
        batch_op.drop_index('ix_subject_request_status')

    op.drop_table('subject_request')
