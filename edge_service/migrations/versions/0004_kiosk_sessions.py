"""Kiosk sessions of the operator page: a cookie's secret stored as its SHA-256, tied to the token that
logged in.

Revision ID: 0004_kiosk_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_kiosk_sessions"
down_revision = "0003_models"


def upgrade() -> None:
    op.create_table(
        "kiosk_sessions",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("token_id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("kiosk_sessions")
