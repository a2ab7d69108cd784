"""Rocchio queries, distribution summaries and label-aware retrieval figures, each checked against
a slow, obvious computation written independently of the code under test."""

import numpy as np
import pytest

from explorer.core import analysis
from explorer.core.embed import mean_query

LABELS = ["a", "b", "c", "d"]


def labelled_collection(seed=3, per_label=(12, 9, 6, 2), unlabelled=15, singles=1, dim=16):
    """Clustered unit vectors: overlapping labels (so AP is neither 0 nor 1), a label of two,
    unlabelled distractors ("") and labels with a single image."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(per_label), dim))
    vectors, labels = [], []
    for name, centre, count in zip(LABELS, centres, per_label):
        vectors.append(centre + 1.3 * rng.normal(size=(count, dim)))
        labels += [name] * count
    vectors.append(rng.normal(size=(unlabelled + singles, dim)) * 1.5)
    labels += [""] * unlabelled + [f"single{i}" for i in range(singles)]
    vectors = np.concatenate(vectors)
    order = rng.permutation(len(labels))  # labels interleaved, as files are in a real folder
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)[order]
    return vectors, np.array(labels)[order]


def reference_ranking(scores, relevant, exclude):
    """Rows best first; on a tie, non-relevant rows first (the documented pessimistic rule)."""
    rows = [i for i in range(len(scores)) if not exclude[i]]
    return sorted(rows, key=lambda i: (-float(scores[i]), bool(relevant[i])))


def reference_ap(scores, relevant, exclude):
    hits, precisions = 0, []
    for rank, row in enumerate(reference_ranking(scores, relevant, exclude), start=1):
        if relevant[row]:
            hits += 1
            precisions.append(hits / rank)
    return sum(precisions) / len(precisions) if precisions else float("nan")


def reference_precision(scores, relevant, exclude, k):
    ranking = reference_ranking(scores, relevant, exclude)
    k = min(k, len(ranking))
    return sum(bool(relevant[row]) for row in ranking[:k]) / k


def reference_evaluation(vectors, labels, k):
    """{label: [(ap, precision@k, recall@1) per query]} computed one query at a time in float64."""
    per_label = {}
    v64 = vectors.astype(np.float64)
    for i, label in enumerate(labels):
        if label == "" or (labels == label).sum() < 2:
            continue
        scores = v64 @ v64[i]
        exclude = np.arange(len(labels)) == i
        relevant = (labels == label) & ~exclude
        ranking = reference_ranking(scores, relevant, exclude)
        per_label.setdefault(label, []).append(
            (reference_ap(scores, relevant, exclude), reference_precision(scores, relevant, exclude, k),
             float(relevant[ranking[0]])))
    return per_label


def assert_no_near_ties(vectors):
    """Precondition: float32 and float64 rankings agree (no two scores within rounding)."""
    scores = np.sort(vectors.astype(np.float64) @ vectors.T.astype(np.float64), axis=1)
    assert np.diff(scores, axis=1).min() > 1e-6


def test_rocchio_is_its_formula():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(size=(3, 8)), rng.normal(size=(2, 8))
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    neg /= np.linalg.norm(neg, axis=1, keepdims=True)
    expected = (pos.sum(0) / 3) - 0.7 * (neg.sum(0) / 2)
    expected /= np.sqrt((expected ** 2).sum())
    np.testing.assert_allclose(analysis.rocchio(pos, neg, 0.7), expected, atol=1e-6)
    np.testing.assert_allclose(analysis.rocchio(pos, None), mean_query(pos), atol=1e-7)
    np.testing.assert_allclose(analysis.rocchio(pos, np.empty((0, 8))), mean_query(pos), atol=1e-7)
    assert not np.isnan(analysis.rocchio(pos[:1], pos[:1], 1.0)).any()  # cancels to zero, not NaN
    with pytest.raises(ValueError):
        analysis.rocchio(np.empty((0, 8)), None)


def test_summary_and_cumulative_distribution():
    scores = np.random.default_rng(1).uniform(-1, 1, 501).astype(np.float32)
    s = analysis.summarise(scores, top_k=7, threshold=0.25)
    assert s.n == 501
    assert s.mean == pytest.approx(sum(map(float, scores)) / 501, abs=1e-6)
    assert s.median == sorted(scores)[250]
    assert s.top_k_mean == pytest.approx(sum(sorted(map(float, scores))[-7:]) / 7, abs=1e-6)
    assert s.above_threshold == sum(1 for x in scores if x >= 0.25)
    x, fraction = analysis.cumulative(scores)
    assert list(x) == sorted(scores)
    assert fraction[0] == 1 / 501 and fraction[-1] == 1.0
    assert fraction[100] == pytest.approx(sum(1 for v in scores if v <= x[100]) / 501)
    empty = analysis.summarise(np.empty(0))
    assert empty.n == 0 and np.isnan(empty.mean)


def test_labels_and_split():
    labels = analysis.labels_of(["cat/a.jpg", "cat/deeper/b.jpg", "root.jpg", "dog/c.png"])
    assert labels.tolist() == ["cat", "cat", "", "dog"]
    same, other = analysis.split_by_label(np.array([0.9, 0.8, 0.1, 0.3]), labels, "cat")
    assert same.tolist() == [0.9, 0.8] and sorted(other.tolist()) == [0.1, 0.3]


def test_average_precision_and_precision_at_k_against_a_loop_over_ranks():
    vectors, labels = labelled_collection()
    assert_no_near_ties(vectors)
    checked = 0
    for i in range(len(labels)):
        scores = vectors @ vectors[i]
        for label in LABELS:  # every label as the relevant set, not only the query's own
            exclude = np.arange(len(labels)) == i
            relevant = labels == label
            assert analysis.average_precision(scores, relevant, exclude) == pytest.approx(
                reference_ap(scores, relevant & ~exclude, exclude), abs=1e-12)
            for k in (1, 5, 10, 1000):
                assert analysis.precision_at_k(scores, relevant, k, exclude) == pytest.approx(
                    reference_precision(scores, relevant & ~exclude, exclude, k), abs=1e-12)
            assert analysis.ap_and_precision_at_k(scores, relevant, 5, exclude) == pytest.approx((
                reference_ap(scores, relevant & ~exclude, exclude),
                reference_precision(scores, relevant & ~exclude, exclude, 5)), abs=1e-12)
            checked += 1
    assert checked == 4 * len(labels)


def test_ties_rank_non_relevant_first_whatever_the_row_order():
    scores = np.array([0.9, 0.9, 0.5, 0.9])
    relevant = np.array([False, True, True, True])
    # Ranking: 0.9 (no), 0.9 (yes), 0.9 (yes), 0.5 (yes) -> precisions 1/2, 2/3, 3/4.
    expected = (1 / 2 + 2 / 3 + 3 / 4) / 3
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 0, 3, 2]):
        assert analysis.average_precision(scores[order], relevant[order]) == pytest.approx(expected)
        assert analysis.precision_at_k(scores[order], relevant[order], 1) == 0.0
    assert analysis.precision_at_k(scores, relevant, 3) == pytest.approx(2 / 3)
    assert np.isnan(analysis.average_precision(scores, np.zeros(4, bool)))


@pytest.mark.parametrize("block_elements", [1 << 23, 200])  # one block per label; many tiny ones
def test_evaluate_against_one_query_at_a_time(block_elements):
    vectors, labels = labelled_collection()
    assert_no_near_ties(vectors)
    progress = []
    result = analysis.evaluate(vectors, labels, k=10, block_elements=block_elements,
                               progress=lambda done, total, _: progress.append((done, total)))
    expected = reference_evaluation(vectors, labels, 10)
    assert sorted(result.labels) == sorted(expected) == ["a", "b", "c", "d"]
    assert result.singletons == ["single0"]
    for label, rows in expected.items():
        got = result.labels[label]
        assert got.queries == len(rows)
        for value, column in ((got.mean_average_precision, 0), (got.precision_at_k, 1), (got.recall_at_1, 2)):
            assert value == pytest.approx(np.mean([r[column] for r in rows]), abs=1e-9)
    every = [r for rows in expected.values() for r in rows]
    assert result.overall.queries == len(every) == 12 + 9 + 6 + 2
    assert result.overall.mean_average_precision == pytest.approx(np.mean([r[0] for r in every]), abs=1e-9)
    assert result.overall.precision_at_k == pytest.approx(np.mean([r[1] for r in every]), abs=1e-9)
    assert result.overall.recall_at_1 == pytest.approx(np.mean([r[2] for r in every]), abs=1e-9)
    assert 0.2 < result.overall.mean_average_precision < 0.95  # a test that can tell good from bad
    # Per-query figures line up with their rows.
    row = int(result.query_rows[0])
    scores = vectors @ vectors[row]
    exclude = np.arange(len(labels)) == row
    assert result.average_precision[0] == pytest.approx(
        analysis.average_precision(scores, labels == labels[row], exclude))
    assert sorted(result.query_rows.tolist()) == [i for i, l in enumerate(labels) if l in LABELS]
    # One block per label, or blocks of 200 // 45 = 4 queries: 3 + 3 + 2 + 1.
    assert progress[-1] == (29, 29) and len(progress) == (4 if block_elements > 1000 else 9)


def test_evaluate_with_a_share_of_each_label_as_queries():
    """max_queries: an evenly spaced share of each label's images ask, each ranked against the
    whole collection, so each one's figures are those of the full evaluation."""
    vectors, labels = labelled_collection()
    full = analysis.evaluate(vectors, labels, k=10)
    part = analysis.evaluate(vectors, labels, k=10, max_queries=15)
    assert {name: s.queries for name, s in part.labels.items()} == {"a": 6, "b": 5, "c": 3, "d": 1}
    assert part.overall.queries == len(part.query_rows) == 15
    for row, ap in zip(part.query_rows, part.average_precision):
        assert ap == pytest.approx(full.average_precision[full.query_rows.tolist().index(row)], abs=1e-12)
    a_rows = np.flatnonzero(labels == "a")
    assert part.query_rows[:6].tolist() == a_rows[[0, 2, 4, 7, 9, 11]].tolist()  # evenly spaced


def test_evaluation_json_names_precision_by_its_k():
    vectors, labels = labelled_collection()
    data = analysis.evaluate(vectors, labels, k=5).to_json()
    assert set(data) == {"overall", "labels"}
    assert set(data["overall"]) == {"mAP", "precision@5", "recall@1"}
    assert set(data["labels"]) == {"a", "b", "c", "d"}
    assert all(isinstance(v, float) for v in data["labels"]["a"].values())


def test_evaluate_without_labels_and_cancelled():
    vectors, _ = labelled_collection()
    nothing = analysis.evaluate(vectors, np.array([""] * len(vectors)))
    assert nothing.overall.queries == 0 and nothing.labels == {}
    assert nothing.to_json()["overall"]["mAP"] is None
    _, labels = labelled_collection()
    assert analysis.evaluate(vectors, labels, cancelled=lambda: True) is None


def test_perfectly_separated_labels_score_one():
    rng = np.random.default_rng(5)
    vectors = np.kron(np.eye(3), np.ones((4, 1)))[:, :, None].repeat(2, axis=2).reshape(12, 6)
    vectors = vectors + 0.01 * rng.normal(size=vectors.shape)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    result = analysis.evaluate(vectors, np.repeat(["x", "y", "z"], 4), k=10)
    assert result.overall.mean_average_precision == pytest.approx(1.0)
    assert result.overall.recall_at_1 == 1.0
    assert result.overall.precision_at_k == pytest.approx(3 / 10)  # 3 relevant in a top 10
