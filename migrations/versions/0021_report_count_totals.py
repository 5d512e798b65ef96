"""Reports: each counter row keeps its day's total beside its 15-minute slots

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 01:20:00

A year's volumes read each UTC day as its total and the part before the lead's local
midnight; the total was the sum of the row's 96 slot columns, added up again for every
row at every read. ``report_counts.total`` keeps it as the slots are counted.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

QUARTERS = 96


def upgrade():
    with op.batch_alter_table("report_counts") as batch:
        batch.add_column(sa.Column("total", sa.Integer(), nullable=False, server_default="0"))
    slots = " + ".join(f"q{n}" for n in range(QUARTERS))
    op.execute(f"UPDATE report_counts SET total = {slots}")


def downgrade():
    with op.batch_alter_table("report_counts") as batch:
        batch.drop_column("total")
