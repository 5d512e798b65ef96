"""gunicorn settings for Switchboard, read from the project directory (``gunicorn wsgi:app``).

One worker per process: Socket.IO keeps a client's session in the process that
accepted it, so scale out with several single-worker processes behind a sticky
load balancer, all with the same ``REDIS_URL`` (see the README, "Deploying:
several processes"). The gthread worker holds one thread per open WebSocket, so
``threads`` must stay above the number of connected browsers plus the
concurrent webhook and API requests. Command-line flags override these values.
"""

from __future__ import annotations

workers = 1
worker_class = "gthread"
threads = 100
graceful_timeout = 10  # open WebSockets would otherwise hold a restart for 30 s


def post_worker_init(worker) -> None:
    """``RUN_BACKGROUND=1``: this process also runs the scheduler and the delivery worker.

    Under gunicorn it defaults to 0 (run ``flask --app wsgi worker`` once instead).
    It starts here, in the worker, because threads do not survive gunicorn's fork.
    """
    from config import env_bool

    if env_bool("RUN_BACKGROUND", False):
        import wsgi

        wsgi.start_background(getattr(worker, "wsgi", None) or wsgi.app)
