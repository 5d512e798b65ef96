"""SQLAlchemy models, one module per aggregate."""

from app.models.account import Invite, PasswordReset
from app.models.audit import AuditLine
from app.models.canned import CannedReply
from app.models.contact import Contact, ContactIdentity
from app.models.conversation import STATUSES, Conversation
from app.models.counts import ConversationCount
from app.models.inbox import DEFAULT_SETTINGS, Inbox, InboxMember
from app.models.intake import WebhookIntake
from app.models.job import JobLock
from app.models.label import Label, conversation_labels
from app.models.message import Attachment, Message
from app.models.notification import Notification
from app.models.outbox import OutboxItem
from app.models.report import ReportCount, ReportEvent, ReportWait, ResponseBreach
from app.models.user import ApiToken, LoginSession, User

__all__ = [
    "STATUSES",
    "DEFAULT_SETTINGS",
    "ApiToken",
    "AuditLine",
    "LoginSession",
    "Attachment",
    "CannedReply",
    "Contact",
    "ContactIdentity",
    "ConversationCount",
    "Conversation",
    "Inbox",
    "InboxMember",
    "Invite",
    "JobLock",
    "Label",
    "Message",
    "Notification",
    "OutboxItem",
    "PasswordReset",
    "ReportEvent",
    "ReportCount",
    "ReportWait",
    "ResponseBreach",
    "User",
    "WebhookIntake",
    "conversation_labels",
]
