"""Models on the service: the models table (one row per uploaded name + version, the file kept by SHA-256),
and the station assignment names a model (name, version, SHA-256), keeps its earlier assignments for rollback
and an optional shadow candidate; its threshold may be null (the model's own).

Revision ID: 0003_models
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_models"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("preset", sa.String(32)),
        sa.Column("card", sa.Text, nullable=False),
        sa.Column("uploaded_by", sa.String(128), nullable=False),
        sa.Column("uploaded_at", sa.DateTime, nullable=False),
        sa.Column("note", sa.Text),
        sa.UniqueConstraint("name", "version", name="uq_models_name_version"),
    )
    op.create_index("ix_models_sha256", "models", ["sha256"])
    op.create_index("ix_models_uploaded_at", "models", ["uploaded_at"])
    with op.batch_alter_table("station_assignments") as batch:
        batch.alter_column("threshold", existing_type=sa.Float, nullable=True)
        batch.add_column(sa.Column("model_name", sa.String(64)))
        batch.add_column(sa.Column("model_sha256", sa.String(64)))
        batch.add_column(sa.Column("shadow_model_name", sa.String(64)))
        batch.add_column(sa.Column("shadow_model_version", sa.String(64)))
        batch.add_column(sa.Column("previous", sa.Text))  # JSON list of earlier assignments, newest first


def downgrade() -> None:
    op.execute("UPDATE station_assignments SET threshold = 0 WHERE threshold IS NULL")
    with op.batch_alter_table("station_assignments") as batch:
        for column in ("previous", "shadow_model_version", "shadow_model_name", "model_sha256", "model_name"):
            batch.drop_column(column)
        batch.alter_column("threshold", existing_type=sa.Float, nullable=False)
    op.drop_table("models")
