"""Entry point. ``wsgi:app`` for gunicorn; ``python wsgi.py`` serves everything.

``python wsgi.py`` (the embedded default, ``make run``) runs gunicorn with the
project's ``gunicorn.conf.py`` (one gevent worker: the production server) on
HOST:PORT and, unless ``RUN_BACKGROUND=0``, the scheduler and the delivery
worker in that same worker process. Under plain gunicorn ``RUN_BACKGROUND``
defaults to 0: run ``flask --app wsgi worker`` as the one background process
(``gunicorn.conf.py`` starts them in the gunicorn worker when ``RUN_BACKGROUND=1``).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Serve on HOST:PORT through gunicorn's gevent worker, background work in-process."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    os.environ.setdefault("RUN_BACKGROUND", "1")
    print(f"Switchboard is serving on http://{host}:{port}", flush=True)
    args = [sys.executable, "-m", "gunicorn", "--chdir", str(HERE)]
    args += ["-c", str(HERE / "gunicorn.conf.py"), "-b", f"{host}:{port}", "wsgi:app"]
    # the worker patches the process for gevent before it imports the app
    os.execv(sys.executable, args)


if __name__ == "__main__":
    main()

from app import create_app  # noqa: E402 - `python wsgi.py` hands over before importing the app

app = create_app()
# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's full passes, which otherwise stop every request for tens of milliseconds.
gc.freeze()


def start_background(flask_app=None) -> None:
    """Run the scheduler and the delivery worker in this process (``RUN_BACKGROUND=1``).

    ``python wsgi.py`` sets ``RUN_BACKGROUND=1`` unless it is set; under gunicorn
    the ``post_worker_init`` hook of ``gunicorn.conf.py`` calls this when it is 1.
    """
    from app.runtime.jobs import start_scheduler
    from app.runtime.worker import WorkerThread

    flask_app = flask_app or app
    start_scheduler(flask_app)
    WorkerThread(flask_app).start()
