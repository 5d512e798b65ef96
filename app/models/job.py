"""Scheduler bookkeeping: one row per periodic job, used as a cross-process lock."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime


class JobLock(db.Model):
    """Who runs a job now and when it last ran (so two schedulers never both run it)."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    owner: Mapped[str | None] = mapped_column(sa.String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
