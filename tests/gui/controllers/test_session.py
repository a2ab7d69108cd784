"""The session on its own (no window): it opens a folder, writes the state, answers queries
and runs the analysis jobs, each through one task of its kind, on the real indexed photos."""

import numpy as np
import pytest

from explorer.core import analysis
from explorer.core.duplicates import nearest_neighbour_similarities
from explorer.gui.controllers.session import Session
from explorer.gui.controllers.tasks import TaskKind, Tasks
from explorer.gui.state.app_state import AppState


@pytest.fixture
def session(qtbot):
    state, tasks = AppState(), Tasks()
    session = Session(state, tasks)
    yield session
    session.shutdown()


def opened(qtbot, session, folder):
    session.open_folder(folder)
    qtbot.waitUntil(lambda: session.state.collection is not None and not session.state.indexing.running
                    and session.state.layout is not None and not session.tasks.running(TaskKind.OPEN, TaskKind.LAYOUT),
                    timeout=120_000)
    return session.state


def result_of(qtbot, task):
    results = []
    task.succeeded.connect(results.append)
    qtbot.waitUntil(lambda: task.done, timeout=60_000)
    assert results, f"{task.kind} delivered nothing"
    return results[0]


def test_open_query_and_analysis_jobs(qtbot, session, indexed_folder):
    state = opened(qtbot, session, indexed_folder)
    c = state.collection
    assert len(c) == 28 and len(state.layout.ids) == 28

    emissions = []
    state.query.changed.connect(lambda: emissions.append(state.query.scores))
    session.query_by_rows([0, 1])
    assert len(emissions) == 1  # the old examples replaced and the new scored: one change
    expected = c.vectors @ analysis.rocchio(c.vectors[[0, 1]])
    np.testing.assert_allclose(state.query.scores, expected, atol=1e-5)

    evaluation = result_of(qtbot, session.evaluate(10))
    assert evaluation.to_json() == analysis.evaluate(c.vectors, analysis.labels_of(c.paths), k=10).to_json()
    np.testing.assert_allclose(result_of(qtbot, session.find_nearest()), nearest_neighbour_similarities(c), atol=1e-6)
    groups = result_of(qtbot, session.group_duplicates(0.9))
    assert groups and all(len(g) >= 2 for g in groups)

    # The query under the open representation: the state's own scores.
    examples = [(e.path, e.vector) for e in state.query.positives]
    result = result_of(qtbot, session.represent("A", state.model, examples, [], False))
    np.testing.assert_allclose(result.scores, state.query.scores, atol=1e-5)
    assert result.evaluation is None


def test_no_labels_no_evaluation(qtbot, session, tmp_path, lite0):
    from explorer.core.indexer import index_folder
    from helpers import copy_sample

    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in copy_sample(tmp_path / "sample", ["cat"]).rglob("*.jpg"):
        photo.rename(flat / photo.name)  # no subfolders: no labels
    index_folder(flat, lite0)
    opened(qtbot, session, flat)
    assert session.evaluate() is None
    assert session.find_nearest() is not None
