"""Contacts: who may see one, editing what agents keep about a customer, finding contacts
and the likely duplicates of one.

A contact is visible to a user who may see one of its conversations (team leads and
admins see every contact). Details are normalised as the channels store addresses:
a phone number in E.164 (``phonenumbers``, a number without a country code read in
the configured default region), an email address in its one spelling. No Flask here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from app import channels
from app.inbox import events
from app.inbox.queries import visible_inbox_ids
from app.models import Contact, ContactIdentity, Conversation, User
from connectors.email.address import normalize_address
from connectors.sms import phone as phones

MAX_NAME = 200
MAX_NOTES = 10000
MAX_ATTRIBUTES = 50
MAX_KEY = 64
MAX_VALUE = 1000
SEARCH_LIMIT = 20


class InvalidContact(ValueError):
    """Details that cannot be stored: ``fields`` maps each field to why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


# ------------------------------------------------------------------ visibility


def visible_condition(user: User):
    """A condition on ``Contact`` true for the contacts ``user`` may see (None: all of them)."""
    visible = visible_inbox_ids(user)
    if visible is None:
        return None
    return Contact.id.in_(
        sa.select(Conversation.contact_id).where(Conversation.inbox_id.in_(visible))
    )


def can_see_contact(session: Session, user: User, contact: Contact) -> bool:
    """True when ``user`` may see ``contact`` (one of its conversations is in their inboxes)."""
    cond = visible_condition(user)
    if cond is None:
        return True
    return session.scalar(sa.select(Contact.id).where(Contact.id == contact.id, cond)) is not None


def conversations_of(session: Session, user: User, contact_id: int, limit: int = 100):
    """The contact's conversations in inboxes ``user`` sees, latest activity first."""
    q = sa.select(Conversation).where(Conversation.contact_id == contact_id)
    visible = visible_inbox_ids(user)
    if visible is not None:
        q = q.where(Conversation.inbox_id.in_(visible))
    q = q.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit)
    return list(session.scalars(q).unique())


def audience(session: Session, contact_ids) -> list[tuple[str, int]]:
    """Live-event audiences of the inboxes where these contacts have conversations."""
    inbox_ids = session.scalars(
        sa.select(Conversation.inbox_id)
        .where(Conversation.contact_id.in_(list(contact_ids)))
        .distinct()
    )
    return [("inbox", i) for i in sorted(inbox_ids)]


# ------------------------------------------------------------------ details


def clean_email(raw) -> str | None:
    """An email address in its one spelling, None for empty; raises ValueError with why."""
    if raw is None or not str(raw).strip():
        return None
    try:
        checked = validate_email(str(raw).strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return normalize_address(checked.normalized)


def clean_phone(raw, region: str | None) -> str | None:
    """A phone number in E.164, None for empty; raises ValueError with why."""
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    number = phones.normalise(text, region) if len(text) <= 40 else None
    if number is None or not number.startswith("+"):
        hint = "with its country code, e.g. +14155550100"
        if region:
            hint = f"with its country code (e.g. +14155550100), or a {region} number"
        raise ValueError(f"is not a valid phone number: write it {hint}.")
    return number


def _clean_attributes(raw) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("must be an object of names and values.")
    if len(raw) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes.")
    out: dict[str, str | int | float | bool] = {}
    for key, value in raw.items():
        name = " ".join(str(key).split())
        if not name or len(name) > MAX_KEY:
            raise ValueError(f"each name has 1 to {MAX_KEY} characters.")
        if value is None or value == "":
            continue  # an empty value removes the attribute
        if isinstance(value, bool | int | float):
            out[name] = value
        elif isinstance(value, str):
            if len(value) > MAX_VALUE:
                raise ValueError(f"{name}: at most {MAX_VALUE} characters.")
            out[name] = value.strip()
        else:
            raise ValueError(f"{name}: a value is text, a number or true/false.")
    return out


def update_details(
    session: Session, contact: Contact, data: dict, *, region: str | None = None
) -> list[str]:
    """Apply the given fields of ``data`` (name, email, phone, notes, attributes).

    Fields left out stay as they are; an empty value clears one. Raises
    :class:`InvalidContact` naming every wrong field (nothing changes then). Returns
    the names of the fields that changed, and tells the inboxes of the contact's
    conversations (``contact.updated``).
    """
    if contact.erased_at is not None:
        raise InvalidContact({"contact": "was erased; it cannot be edited."})
    errors: dict[str, str] = {}
    values: dict = {}
    if "name" in data:
        name = data["name"]
        if name is not None and not isinstance(name, str):
            errors["name"] = "must be text."
        else:
            name = " ".join(unicodedata.normalize("NFC", name or "").split())
            if len(name) > MAX_NAME:
                errors["name"] = f"at most {MAX_NAME} characters."
            values["name"] = name or None
    for field, clean in (("email", clean_email), ("phone", lambda v: clean_phone(v, region))):
        if field in data:
            if data[field] is not None and not isinstance(data[field], str):
                errors[field] = "must be text."
                continue
            try:
                values[field] = clean(data[field])
            except ValueError as exc:
                errors[field] = str(exc)
    if "notes" in data:
        notes = data["notes"]
        if notes is not None and not isinstance(notes, str):
            errors["notes"] = "must be text."
        elif notes and len(notes) > MAX_NOTES:
            errors["notes"] = f"at most {MAX_NOTES} characters."
        else:
            values["notes"] = (notes or "").strip() or None
    if "attributes" in data:
        try:
            values["attributes"] = _clean_attributes(data["attributes"])
        except ValueError as exc:
            errors["attributes"] = str(exc)
    if errors:
        raise InvalidContact(errors)
    changed = [k for k, v in values.items() if getattr(contact, k) != v]
    for key in changed:
        setattr(contact, key, values[key])
    if changed:
        session.flush()
        publish_contact(session, contact, "contact.updated")
    return changed


def publish_contact(session: Session, contact: Contact, name: str, **extra) -> None:
    """Tell the inboxes of the contact's conversations (``contact.updated``, ``contact.merged``)."""
    payload = {**contact.ref(), **extra}
    aud = audience(session, [contact.id])
    if aud:
        events.publish(session, name, payload, *aud)


# ------------------------------------------------------------------ addresses


def addresses(contact: Contact) -> dict[str, set[str]]:
    """The contact's email addresses and phone numbers: its details and its identities'."""
    out: dict[str, set[str]] = {"email": set(), "phone": set()}
    if contact.email:
        out["email"].add(contact.email)
    if contact.phone:
        out["phone"].add(contact.phone)
    for ident in contact.identities:
        try:
            adapter = channels.get(ident.channel)
        except KeyError:
            continue
        kind = adapter.contact_address
        address = adapter.address_of(ident.external_id) if kind else None
        if address:
            out.setdefault(kind, set()).add(address)
    return out


@dataclass(frozen=True)
class Suggestion:
    """Another contact that shares an address with this one."""

    contact: Contact
    kind: str  # email | phone
    address: str


def suggestions(session: Session, user: User, contact: Contact, limit: int = 10):
    """Contacts ``user`` sees that share an email address or a phone number with ``contact``."""
    mine = addresses(contact)
    emails, numbers = sorted(mine.get("email", ())), sorted(mine.get("phone", ()))
    if not emails and not numbers:
        return []
    every = [*emails, *numbers]
    q = (
        sa.select(Contact)
        .where(
            Contact.id != contact.id,
            Contact.erased_at.is_(None),
            sa.or_(
                Contact.email.in_(emails) if emails else sa.false(),
                Contact.phone.in_(numbers) if numbers else sa.false(),
                Contact.id.in_(
                    sa.select(ContactIdentity.contact_id).where(
                        ContactIdentity.external_id.in_(every)
                    )
                ),
            ),
        )
        .order_by(Contact.id)
        .limit(limit)
    )
    cond = visible_condition(user)
    if cond is not None:
        q = q.where(cond)
    out = []
    for other in session.scalars(q):
        theirs = addresses(other)
        shared = next(
            (
                (kind, address)
                for kind in ("email", "phone")
                for address in sorted(mine.get(kind, set()) & theirs.get(kind, set()))
            ),
            None,
        )
        if shared:
            out.append(Suggestion(other, *shared))
    return out


def search(
    session: Session,
    user: User,
    text: str,
    *,
    exclude: int | None = None,
    limit: int = SEARCH_LIMIT,
) -> list[Contact]:
    """Contacts ``user`` sees whose name, email, phone or identity holds ``text``.

    A text that is mostly digits also matches phone numbers written otherwise
    (``11 98765-4321`` finds ``+5511987654321``).
    """
    text = unicodedata.normalize("NFC", (text or "").strip())
    if not text:
        return []

    def has(col, value=text):
        return col.icontains(value, autoescape=True)

    conds = [
        has(Contact.name),
        has(Contact.email),
        has(Contact.phone),
        Contact.id.in_(
            sa.select(ContactIdentity.contact_id).where(has(ContactIdentity.external_id))
        ),
    ]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 4 and len(digits) >= len(re.sub(r"[\s()+.-]", "", text)):
        conds += [
            has(Contact.phone, digits),
            Contact.id.in_(
                sa.select(ContactIdentity.contact_id).where(
                    has(ContactIdentity.external_id, digits)
                )
            ),
        ]
    q = sa.select(Contact).where(sa.or_(*conds), Contact.erased_at.is_(None))
    if exclude:
        q = q.where(Contact.id != exclude)
    cond = visible_condition(user)
    if cond is not None:
        q = q.where(cond)
    q = q.order_by(Contact.name.is_(None), Contact.name, Contact.id).limit(limit)
    return list(session.scalars(q))
