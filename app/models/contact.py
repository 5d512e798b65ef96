"""Contacts (customers) and their identities on each channel."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import channels
from app.clock import now
from app.extensions import db
from app.models.types import JSONType, UTCDateTime

#: What an erased contact is called (the browser shows it translated).
ERASED_NAME = "Erased contact"


class Contact(db.Model):
    """A customer. One contact may have identities on several channels."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    avatar_url: Mapped[str | None] = mapped_column(sa.String(1000))
    locale: Mapped[str | None] = mapped_column(sa.String(16))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    # what agents keep about the customer (migration 0012): E.164 phone, lowercased email
    email: Mapped[str | None] = mapped_column(sa.String(320), index=True)
    phone: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # data-protection erasure
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    identities: Mapped[list[ContactIdentity]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", lazy="selectin"
    )

    def display_name(self) -> str:
        """A readable name, even before the provider's profile arrived."""
        if self.erased_at is not None:
            return ERASED_NAME
        if self.name:
            return self.name
        for ident in self.identities:
            return ident.fallback_name()
        return f"Contact #{self.id}"

    def ref(self) -> dict:
        """The short form embedded in conversation objects."""
        return {
            "id": self.id,
            "name": self.display_name(),
            "avatar_url": self.avatar_url,
            "email": self.email,
            "phone": self.phone,
            "erased": self.erased_at is not None,
            "identities": [i.to_dict() for i in self.identities],
        }


class ContactIdentity(db.Model):
    """A contact's address on one inbox: PSID, phone number, email, GBM conversation.

    Unique per inbox. Consent (SMS opt-out) and deliverability are per identity.
    """

    __tablename__ = "contact_identities"
    __table_args__ = (sa.UniqueConstraint("inbox_id", "external_id", name="uq_identity_inbox_ext"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    inbox_id: Mapped[int] = mapped_column(sa.ForeignKey("inboxes.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    external_id: Mapped[str] = mapped_column(sa.String(320))
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undeliverable_reason: Mapped[str | None] = mapped_column(sa.String(300))
    profile_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    contact: Mapped[Contact] = relationship(back_populates="identities")

    def fallback_name(self) -> str:
        """What to call the contact until the provider tells us their name."""
        try:
            label = channels.get(self.channel).identity_label
        except KeyError:
            label = "Customer"
        if label is None:  # a phone number or an address says who it is
            return self.external_id
        return f"{label} {self.external_id[-4:]}"

    def to_dict(self) -> dict:
        """The API's identity object."""
        return {
            "channel": self.channel,
            "external_id": self.external_id,
            "inbox_id": self.inbox_id,
            "opted_out": self.opted_out_at is not None,
            "undeliverable": self.undeliverable_reason,
        }
