"""The one worker abstraction: results on the GUI thread, latest request wins, errors reported."""

import threading
import time

import pytest

from explorer.gui.controllers.tasks import TaskKind, Tasks


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
    task = tasks.start(TaskKind.EVALUATE, work, 3, on_progress=lambda *p: progress.append((p, threading.current_thread())))
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

    first = tasks.start(TaskKind.PREVIEW, slow, "old", on_result=results.append)
    second = tasks.start(TaskKind.PREVIEW, lambda value: value, "new", on_result=results.append)
    qtbot.waitUntil(lambda: first.done and second.done, timeout=5000)
    assert first.cancelled and results == ["new"]


def test_keys_and_concurrent_kinds_do_not_supersede(qtbot, tasks):
    """The two sides of a comparison (keys) and every drop of query images (a concurrent
    kind) all deliver; cancelling a kind stops every task of it."""
    results = []

    def slow(value, cancelled):
        deadline = time.monotonic() + 0.3
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return value

    started = [tasks.start(TaskKind.REPRESENT, slow, "A", key="A", on_result=results.append),
               tasks.start(TaskKind.REPRESENT, slow, "B", key="B", on_result=results.append),
               tasks.start(TaskKind.EMBED_QUERY, slow, "drop 1", on_result=results.append),
               tasks.start(TaskKind.EMBED_QUERY, slow, "drop 2", on_result=results.append)]
    assert tasks.running(TaskKind.EMBED_QUERY) and tasks.latest(TaskKind.REPRESENT, "A") is started[0]
    qtbot.waitUntil(lambda: all(t.done for t in started), timeout=5000)
    assert sorted(results) == ["A", "B", "drop 1", "drop 2"]
    assert not tasks.running(TaskKind.EMBED_QUERY, TaskKind.REPRESENT)

    results.clear()
    again = [tasks.start(TaskKind.REPRESENT, slow, side, key=side, on_result=results.append) for side in "AB"]
    tasks.cancel(TaskKind.REPRESENT)
    qtbot.waitUntil(lambda: all(t.done for t in again), timeout=5000)
    assert results == [] and all(t.cancelled for t in again)


def test_failures_reach_the_single_reporter(qtbot, tasks):
    def broken():
        raise ValueError("bad input")

    with qtbot.waitSignal(tasks.failed, timeout=5000) as blocker:
        tasks.start(TaskKind.EVALUATE, broken)
    kind, error = blocker.args
    assert kind is TaskKind.EVALUATE and isinstance(error, ValueError) and "bad input" in str(error)
