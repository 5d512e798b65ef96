"""The JSON API (``/api/v1``) of ``contract.md``. Thin: the domain does the work.

One module per resource, each adding its routes to the one blueprint of
:mod:`.base` (which also holds the authentication and CSRF gate and the request
helpers); :mod:`.errors` has the error type and its JSON answer; the API objects
for inboxes and users are in :mod:`app.web.schemas`.
"""

from app.web.api import (  # noqa: F401  (each module adds its routes to the blueprint)
    attachments,
    canned,
    channels,
    contacts,
    conversations,
    inboxes,
    invites,
    labels,
    me,
    messages,
    notifications,
    reports,
    team,
    templates,
    users,
)
from app.web.api.base import bp
from app.web.api.errors import ApiError

__all__ = ["ApiError", "bp"]
