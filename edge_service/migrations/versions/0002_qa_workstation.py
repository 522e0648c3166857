"""QA workstation: defect classes per station, station assignments (threshold), audit log, queue indexes.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "defect_classes",
        sa.Column("station_prefix", sa.String(330), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
    )
    op.create_table(
        "station_assignments",
        sa.Column("station_path", sa.String(330), primary_key=True),
        sa.Column("model_version", sa.String(64)),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(330), nullable=False),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    # the review queue filters by verdict or review state and orders by time; part ids are searched by prefix
    op.create_index("ix_results_verdict_time", "results", ["verdict", "inspected_at", "inspection_id"])
    op.create_index("ix_results_review_time", "results", ["review_state", "inspected_at", "inspection_id"])
    # varchar_pattern_ops: PostgreSQL can use it for LIKE 'prefix%' whatever the database's collation
    op.create_index("ix_results_part_id", "results", ["part_id"], postgresql_ops={"part_id": "varchar_pattern_ops"})


def downgrade() -> None:
    for index in ("ix_results_part_id", "ix_results_review_time", "ix_results_verdict_time"):
        op.drop_index(index, table_name="results")
    for table in ("audit_log", "station_assignments", "defect_classes"):
        op.drop_table(table)
