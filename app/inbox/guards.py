"""Guards an agent's post passes before it is stored.

"New activity since you opened it" (Help Scout's guard): a reply or note written
without seeing a newer customer message, or a teammate's newer reply, is held
back so the agent can read it first.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Message

#: At most this many unseen messages are handed back with a refused post.
UNSEEN_LIMIT = 20


def unseen_activity(
    session: Session,
    conversation_id: int,
    seen_message_id: int,
    user_id: int,
    client_id: str | None = None,
) -> list[Message]:
    """Messages newer than ``seen_message_id`` the writer (``user_id``) should read first.

    Those are the customer's messages and other people's (not automated) replies,
    oldest first. Empty when nothing new came in, or when ``client_id`` names a
    post already stored: a repeated post is answered with the first one instead.
    """
    if client_id and session.scalar(
        sa.select(Message.id).where(
            Message.conversation_id == conversation_id, Message.client_id == client_id
        )
    ):
        return []
    return list(
        session.scalars(
            sa.select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.id > seen_message_id,
                sa.or_(
                    Message.direction == "inbound",
                    sa.and_(
                        Message.direction == "outbound",
                        Message.automated.is_(False),
                        sa.or_(
                            Message.sender_user_id.is_(None),
                            Message.sender_user_id != user_id,
                        ),
                    ),
                ),
            )
            .order_by(Message.id)
            .limit(UNSEEN_LIMIT)
        )
    )
