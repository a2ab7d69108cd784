"""The 2D map: a quick layout at once, then UMAP over the vectors aligned onto it, cached, extended
for new images without a refit."""

import os
import subprocess
import sys
import textwrap

from pathlib import Path

import numpy as np
import pytest

from explorer.core import layout as layout_module, layout_worker
from explorer.core.graphs import cache_root
from explorer.core.layout import (
    LAYOUT_FILE, QUICK, UMAP, Layout, align, compute_layout, extend_layout, principal_axes, quick_layout,
)


def two_clusters(n_each=60, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=dim), rng.normal(size=dim)
    x = np.concatenate([a + 0.1 * rng.normal(size=(n_each, dim)), b + 0.1 * rng.normal(size=(n_each, dim))])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_umap_separates_clusters_and_round_trips_through_disk(tmp_path):
    vectors = two_clusters()
    ids = np.arange(1000, 1120)
    layout = compute_layout(vectors, ids)
    assert layout.xy.shape == (120, 2) and np.isfinite(layout.xy).all()
    a, b = layout.xy[:60], layout.xy[60:]
    spread = max(a.std(axis=0).max(), b.std(axis=0).max())
    assert np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) > 3 * spread
    layout.save(tmp_path, generation=3)
    loaded = Layout.load(tmp_path)
    np.testing.assert_array_equal(loaded.ids, ids)
    np.testing.assert_array_equal(loaded.xy, layout.xy)
    # A damaged map file is no map (it is computed again), never an error: cut short, as a disk
    # loses a file's end, numpy's zip reader raises its own BadZipFile.
    data = (tmp_path / LAYOUT_FILE).read_bytes()
    (tmp_path / LAYOUT_FILE).write_bytes(data[: len(data) // 2])
    assert Layout.load(tmp_path) is None


def test_new_images_are_placed_near_their_neighbours_without_refit():
    vectors = two_clusters()
    ids = np.arange(120)
    layout = compute_layout(vectors[:-2], ids[:-2])
    extended = extend_layout(layout, vectors[1:], ids[1:], vectors[:-2])
    assert extended.ids.tolist() == list(range(1, 120))  # id 0 gone, 118 and 119 placed
    known, xy = extended.positions_of(np.array([119, 5, 0]))
    assert known.tolist() == [True, True, False]
    cluster_b = layout.xy[60:118].mean(axis=0)
    cluster_a = layout.xy[:60].mean(axis=0)
    assert np.linalg.norm(xy[0] - cluster_b) < np.linalg.norm(xy[0] - cluster_a)


def test_tiny_collections_get_a_layout_too():
    vectors = two_clusters(1)
    layout = compute_layout(vectors, np.array([4, 2]))
    assert layout.ids.tolist() == [2, 4] and layout.xy.shape == (2, 2)


def test_the_fit_runs_in_a_child_process_that_is_reused(tmp_path):
    """UMAP (and numba, whose compiling holds the GIL) never loads in the asking process; a
    second fit reuses the child; a cancelled fit stops it and the next one starts another."""
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent("""
        import sys
        import time
        import numpy as np
        from explorer.core import layout as layout_module, layout_worker
        from explorer.core.layout import compute_layout

        rng = np.random.default_rng(0)
        vectors = rng.normal(size=(40, 8)).astype(np.float32)
        first = compute_layout(vectors, np.arange(40))
        child = layout_worker.shared_process()._process
        second = compute_layout(vectors, np.arange(40))
        assert layout_worker.shared_process()._process is child and child.poll() is None
        np.testing.assert_array_equal(first.xy, second.xy)  # seeded: the same map
        assert compute_layout(vectors, np.arange(40), cancelled=lambda: True) is None
        many = rng.normal(size=(6000, 32)).astype(np.float32)  # seconds of fitting
        deadline = time.monotonic() + 0.5
        assert compute_layout(many, np.arange(6000), cancelled=lambda: time.monotonic() > deadline) is None
        assert child.poll() is not None and layout_worker.shared_process()._process is None
        third = compute_layout(vectors, np.arange(40))
        assert third.xy.shape == (40, 2)
        assert "umap" not in sys.modules and "numba" not in sys.modules
        print("ok")
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_a_failing_fit_is_reported_and_the_next_fit_works():
    process = layout_worker.shared_process()  # warm from the tests above
    with pytest.raises(layout_worker.LayoutFailed, match="ValueError"):
        process.fit(np.zeros((5, 4), np.float32), 0, n_neighbours=0)  # UMAP refuses
    assert process.fit(two_clusters(10), 0, n_neighbours=5).shape == (20, 2)


def test_a_failed_transform_falls_back_to_the_neighbour_mean(monkeypatch):
    vectors = two_clusters()
    layout = Layout(np.arange(118), np.random.default_rng(0).normal(size=(118, 2)).astype(np.float32))
    start = extend_layout(layout, vectors, np.arange(120), vectors[:118])

    def fail(*args, **kwargs):
        raise layout_worker.LayoutFailed("the map process ended (exit status -9)")

    monkeypatch.setattr(layout_worker.shared_process(), "transform", fail)
    fallback = extend_layout(layout, vectors, np.arange(120), vectors[:118], transform=True)
    np.testing.assert_array_equal(fallback.xy, start.xy)


def test_principal_axes_are_the_svd_axes_and_do_not_depend_on_row_order():
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(64, 64)))
    scales = np.concatenate([[6.0, 3.0], np.linspace(1.0, 0.1, 62)])  # two clear axes, then noise
    vectors = (rng.normal(size=(2000, 64)) * scales @ basis.T + 5.0).astype(np.float32)  # off-centre
    mean, axes = principal_axes(vectors)
    _, _, exact = np.linalg.svd(vectors - vectors.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(mean, vectors.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(np.abs(np.sum(axes * exact[:2], axis=1)), 1.0, atol=1e-4)
    _, shuffled = principal_axes(vectors[rng.permutation(len(vectors))])
    np.testing.assert_allclose(shuffled, axes, atol=1e-4)  # signs fixed: the same picture


def test_the_quick_layout_separates_clusters_in_id_order():
    vectors = two_clusters()
    ids = np.arange(120)[::-1].copy()  # given in reverse id order
    quick = quick_layout(vectors, ids)
    assert quick.kind == QUICK and quick.ids.tolist() == list(range(120))
    known, xy = quick.positions_of(np.arange(120))
    a, b = xy[60:], xy[:60]  # ids 60..119 are the first cluster's rows
    spread = max(a.std(axis=0).max(), b.std(axis=0).max())
    assert known.all() and np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) > 3 * spread


def test_a_large_collection_finds_its_axes_on_a_sample_of_rows_and_lays_out_every_row(monkeypatch):
    monkeypatch.setattr(layout_module, "AXES_SAMPLE_ROWS", 25)  # 120 rows: every 5th one
    vectors = two_clusters()
    sampled = quick_layout(vectors, np.arange(120))
    _, sample_axes = principal_axes(vectors[::5])
    expected = vectors @ sample_axes.T
    np.testing.assert_allclose(sampled.xy - sampled.xy.mean(axis=0), expected - expected.mean(axis=0), atol=1e-4)
    a, b = sampled.xy[:60], sampled.xy[60:]
    assert np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) > 3 * max(a.std(axis=0).max(), b.std(axis=0).max())


def test_a_map_of_more_than_fit_rows_fits_a_sample_and_places_the_rest_among_their_kin(monkeypatch):
    """Above FIT_ROWS images UMAP fits an evenly spaced sample and the others are placed by its
    transform: every image gets a finite place, and placed images lie among their own cluster
    (2D nearest-neighbour label agreement) as fitted ones do."""
    monkeypatch.setattr(layout_module, "FIT_ROWS", 200)
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(6, 32))
    labels = rng.integers(0, 6, 1500)
    vectors = centres[labels] + 0.25 * rng.normal(size=(1500, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(5000, 6500)
    progress = []
    layout = compute_layout(vectors, ids, progress=lambda done, total, message: progress.append(message))
    assert layout.kind == UMAP and layout.ids.tolist() == ids.tolist() and np.isfinite(layout.xy).all()
    assert any("200 of the 1500" in m for m in progress) and any("placing the other 1300" in m for m in progress)
    fitted = np.zeros(1500, bool)
    fitted[np.linspace(0, 1499, 200).round().astype(int)] = True
    distances = np.linalg.norm(layout.xy[:, None] - layout.xy[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    nearest = np.argsort(distances, axis=1)[:, :10]
    agreement = (labels[nearest] == labels[:, None]).mean(axis=1)
    assert agreement[fitted].mean() > 0.95 and agreement[~fitted].mean() > 0.95


def test_align_undoes_a_turn_a_mirror_a_scale_and_a_shift():
    rng = np.random.default_rng(2)
    reference = Layout(np.arange(50), rng.normal(size=(50, 2)).astype(np.float32), QUICK)
    angle = np.deg2rad(130)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (reference.xy @ turn @ np.diag([1.0, -1.0])) * 7.5 + [40.0, -3.0]
    aligned = align(Layout(np.arange(50), moved.astype(np.float32)), reference)
    assert aligned.kind == UMAP
    np.testing.assert_allclose(aligned.xy, reference.xy, atol=1e-4)


def test_compute_layout_hands_over_the_quick_layout_first_and_returns_umap_aligned_onto_it():
    vectors = two_clusters()
    ids = np.arange(120)
    quick_ones = []
    umap_layout = compute_layout(vectors, ids, on_quick=quick_ones.append)
    assert [q.kind for q in quick_ones] == [QUICK] and umap_layout.kind == UMAP
    quick = quick_ones[0]
    # Aligned: each cluster lies where it lay on the quick layout, at the quick layout's scale.
    quick_gap = quick.xy[:60].mean(axis=0) - quick.xy[60:].mean(axis=0)
    umap_gap = umap_layout.xy[:60].mean(axis=0) - umap_layout.xy[60:].mean(axis=0)
    assert np.dot(quick_gap, umap_gap) / (np.linalg.norm(quick_gap) * np.linalg.norm(umap_gap)) > 0.95
    assert 0.3 < np.linalg.norm(umap_gap) / np.linalg.norm(quick_gap) < 3


def test_the_map_process_keeps_numbas_compiled_code_in_the_per_user_cache(monkeypatch):
    """The cache must persist and be writable for a pip install and for the installed app: the
    child gets NUMBA_CACHE_DIR (the per-user cache) unless the user set one, and a fit fills it."""
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert layout_worker.child_environment()["NUMBA_CACHE_DIR"] == str(cache_root() / "numba")
    monkeypatch.undo()
    layout_worker.shared_process().warm_up()
    cached = list(Path(os.environ["NUMBA_CACHE_DIR"]).rglob("*.nbi"))
    assert {"umap", "pynndescent"} <= {p.parent.name.split("_")[0] for p in cached}
    # Functions that umap does not mark cache=True are cached too (else ~12 s of compiling a session).
    assert any(p.name.startswith("umap_.smooth_knn_dist-") for p in cached), sorted(p.name for p in cached)
