"""Messenger webhook ingest only (figures 1 and 2 of ``bench/run.py``), on SQLite.

Kept for its old command line: starts ``python wsgi.py`` on a fresh copy of the
prepared benchmark database and measures ``/healthz``, signed single-message
POSTs from N concurrent senders and 100-message batches, then checks that every
message was stored exactly once. Extra options go to ``bench/run.py``.

    .venv/bin/python bench/messenger_ingest.py [--senders 8] [--singles 3000] [--db postgresql]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run.main(["--db", "sqlite", "--servers", "wsgi", "--only", "ingest", *sys.argv[1:]]))
