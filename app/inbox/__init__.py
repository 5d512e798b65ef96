"""The domain: ingest, threading, receipts, replies, reply windows, assignment, automation, queries.

Services take plain values and a session, never a request. The modules tell each other
what happened through :mod:`app.inbox.signals`; :mod:`app.inbox.wiring` connects the
receivers.
"""
