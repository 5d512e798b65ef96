"""Entry point. ``wsgi:app`` for gunicorn; ``python wsgi.py`` serves everything.

``python wsgi.py`` (the embedded default) serves web, API, webhooks and
Socket.IO and, unless ``RUN_BACKGROUND=0``, also runs the scheduler and the
delivery worker in the same process. Under gunicorn ``RUN_BACKGROUND``
defaults to 0: run ``flask --app wsgi worker`` as the one background process
(``gunicorn.conf.py`` starts it in a gunicorn worker when ``RUN_BACKGROUND=1``).
"""

from __future__ import annotations

import gc
import os

from app import create_app
from app.extensions import socketio

app = create_app()
# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's full passes, which otherwise stop every request for tens of milliseconds.
gc.freeze()


def start_background(flask_app=None) -> None:
    """Run the scheduler and the delivery worker in this process (``RUN_BACKGROUND=1``).

    ``python wsgi.py`` calls it unless ``RUN_BACKGROUND=0``; under gunicorn the
    ``post_worker_init`` hook of ``gunicorn.conf.py`` calls it only when
    ``RUN_BACKGROUND=1``.
    """
    from app.runtime.jobs import start_scheduler
    from app.runtime.worker import WorkerThread

    flask_app = flask_app or app
    start_scheduler(flask_app)
    WorkerThread(flask_app).start()


def main() -> None:
    """Serve on HOST:PORT with the background work in-process."""
    from config import env_bool

    if env_bool("RUN_BACKGROUND", True):
        start_background(app)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    print(f"Switchboard is serving on http://{host}:{port}", flush=True)
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, use_reloader=False)


if __name__ == "__main__":
    main()
