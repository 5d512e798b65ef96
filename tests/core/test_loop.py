"""The one background loop: runs in an app context, wakeable, stoppable, survives errors."""

import threading

from flask import current_app

from app.runtime.loop import Loop


def test_the_loop_runs_when_woken_and_survives_an_error(app, caplog):
    runs: list[str] = []
    ran = threading.Event()

    def step():
        runs.append(current_app.name)
        ran.set()
        if len(runs) == 1:
            raise RuntimeError("first run fails")

    loop = Loop(app, step, interval=60, name="test-loop", wait_first=True)
    loop.start()
    try:
        assert not ran.wait(0.2)  # waits first: nothing to do until woken
        loop.wake()
        assert ran.wait(5)
        ran.clear()
        loop.wake()
        assert ran.wait(5)  # the error was logged, the loop went on
    finally:
        loop.stop()
        loop.join(5)
    assert not loop.is_alive()
    assert runs == [app.name, app.name]
    assert "first run fails" in caplog.text
