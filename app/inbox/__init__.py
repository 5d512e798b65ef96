"""The domain: ingest, threading, reply windows, delivery, assignment, queries."""
