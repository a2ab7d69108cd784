"""The one worker abstraction: results on the GUI thread, latest request wins, errors reported."""

import threading
import time

import pytest

from explorer.gui.controllers.tasks import Tasks


@pytest.fixture
def tasks(qtbot):
    tasks = Tasks()
    yield tasks
    tasks.shutdown()


def test_results_and_progress_arrive_on_the_gui_thread(qtbot, tasks):
    seen = {}

    def work(n, progress, cancelled):
        seen["worker"] = threading.current_thread()
        for i in range(n):
            progress(i + 1, n, "step")
        return n * 2

    progress = []
    task = tasks.start("job", work, 3, on_progress=lambda *p: progress.append((p, threading.current_thread())))
    with qtbot.waitSignal(task.succeeded, timeout=5000) as blocker:
        pass
    assert blocker.args == [6]
    assert seen["worker"] is not threading.main_thread()
    qtbot.waitUntil(lambda: len(progress) == 3)
    assert all(thread is threading.main_thread() for _, thread in progress)


def test_latest_request_wins_and_the_older_one_is_cancelled(qtbot, tasks):
    results = []

    def slow(value, cancelled):
        deadline = time.monotonic() + 5
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return value

    first = tasks.start("query", slow, "old", on_result=results.append)
    second = tasks.start("query", lambda value: value, "new", on_result=results.append)
    qtbot.waitUntil(lambda: first.done and second.done, timeout=5000)
    assert first.cancelled and results == ["new"]


def test_failures_reach_the_single_reporter(qtbot, tasks):
    def broken():
        raise ValueError("bad input")

    with qtbot.waitSignal(tasks.failed, timeout=5000) as blocker:
        tasks.start("job", broken)
    name, error = blocker.args
    assert name == "job" and isinstance(error, ValueError) and "bad input" in str(error)
