"""gunicorn settings for Switchboard, read from the project directory (``gunicorn wsgi:app``).

One worker per process: Socket.IO keeps a client's session in the process that
accepted it, so scale out with several single-worker processes behind a sticky
load balancer, all with the same ``REDIS_URL`` (see the README, "Deploying:
several processes").

The gevent worker serves each connection in a greenlet: an open WebSocket costs
memory (about 70 KB measured), not a thread, and sockets and HTTP requests share no
fixed pool of threads. ``MAX_SOCKETS`` caps the sockets of the process (sized
from the memory available unless set); a socket past it is refused at once with
503 (``app/realtime/serving.py``). ``worker_connections`` leaves 1,000
connections for webhooks and API calls above that cap, so a full process still
answers them. ``python wsgi.py`` (``make run``) serves through this same
configuration. Command-line flags override these values.
"""

from __future__ import annotations

from config import max_sockets

workers = 1
worker_class = "gevent"
worker_connections = max_sockets() + 1000
graceful_timeout = 10  # open WebSockets would otherwise hold a restart for 30 s
# the control socket (gunicorn 27) sits at one path per user: two instances on a host, or
# the tests' servers, would fight over it; nothing here uses it
control_socket_disable = True


def post_worker_init(worker) -> None:
    """``RUN_BACKGROUND=1``: this process also runs the scheduler and the delivery worker.

    Under gunicorn it defaults to 0 (run ``flask --app wsgi worker`` once instead);
    ``python wsgi.py`` sets it to 1 unless told otherwise. It starts here, in the
    worker, once gevent has patched the process: the scheduler's and the delivery
    worker's threads are greenlets beside the requests'.
    """
    import gc

    from config import env_bool

    # what the app loaded stays for the process's life: out of the collector's way, so a
    # full collection (every few hundred requests) no longer walks it (tens of milliseconds)
    gc.freeze()
    if env_bool("RUN_BACKGROUND", False):
        import wsgi

        wsgi.start_background(getattr(worker, "wsgi", None) or wsgi.app)
