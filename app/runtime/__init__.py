"""What runs in the background: the webhook intake, the outbox worker and the scheduled jobs.

These pieces hold an application (they run outside any request, in threads of
the web process or in ``flask worker``); the domain in :mod:`app.inbox` never
imports them.
"""
