"""Map timings from "vectors ready" to the quick map and to UMAP's map, through the app's own
Session and MapView, for a few collection sizes and three states of numba's cache:

- cold: an empty numba cache (the first run after installing), no warm-up;
- warm: numba's cache filled by an earlier run, a fresh map process, no warm-up;
- warmed up: the map process warmed up as the app does at start (layout_worker.warm_up).

Also the worst event-loop stall meanwhile, one frame of the quick->UMAP transition, and how
well each layout keeps neighbours (trustworthiness, 10 neighbours) on clustered vectors.

    python bench/bench_layout.py [--sizes 100,10000,100000] [--states cold,warm,warmed]

Vectors are synthetic: unit vectors in CLUSTERS clusters, as the default model's would be.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer.core import layout_worker  # noqa: E402
from explorer.core.layout import QUICK, UMAP, compute_layout, quick_layout  # noqa: E402
from explorer.gui.views.map.map_view import MapView  # noqa: E402
from explorer.gui.controllers.session import Session  # noqa: E402
from explorer.gui.state.app_state import AppState  # noqa: E402
from explorer.gui.controllers.thumbnails import ThumbnailCache  # noqa: E402
from explorer.gui.controllers.tasks import Tasks  # noqa: E402

CLUSTERS = 50
DIM = 1280
TICK_MS = 5


def clustered_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, CLUSTERS, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class Stored:
    """What the session writes a map into: a folder and a generation."""

    def __init__(self, directory: Path):
        self.dir, self.generation, self.thumbnails = directory, 0, {}


class VectorsOnly:
    """A collection as the map and the session's layout code read it: ids, paths, vectors."""

    def __init__(self, vectors: np.ndarray, directory: Path):
        self.vectors = vectors
        self.ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
        self.paths = [f"c{i % CLUSTERS:02d}/{i:06d}.jpg" for i in range(len(vectors))]
        self.folder = directory
        self.collection = Stored(directory)

    def __len__(self) -> int:
        return len(self.ids)

    def labels(self):
        return ["all"], np.zeros(len(self.ids), np.int64)

    def close(self) -> None:
        pass


def fresh_map_process(cache: Path) -> layout_worker.LayoutProcess:
    """A new map process with its numba cache in `cache` (the app's shared one is replaced)."""
    if layout_worker._shared is not None:
        layout_worker._shared.stop()
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    layout_worker._shared = layout_worker.LayoutProcess()
    return layout_worker._shared


def one_run(app: QApplication, n: int, cache: Path, warm_up: bool) -> dict[str, float]:
    process = fresh_map_process(cache)
    warm_up_s = 0.0
    if warm_up:
        started = time.perf_counter()
        process.warm_up()
        warm_up_s = time.perf_counter() - started
    scratch = Path(tempfile.mkdtemp(prefix="bench-layout-"))
    state, tasks = AppState(), Tasks()
    session = Session(state, tasks)
    view = MapView(state, session, ThumbnailCache(tasks, state))
    view.resize(900, 700)
    view.show()
    collection = VectorsOnly(clustered_vectors(n), scratch)
    state.set_collection(collection, scratch, "bench")  # type: ignore[arg-type] (vectors, ids, paths suffice)
    app.processEvents()

    shown: dict[str, float] = {}
    clock = QElapsedTimer()
    ticks = {"last": 0, "worst": 0}

    def tick() -> None:
        now = clock.elapsed()
        ticks["worst"] = max(ticks["worst"], now - ticks["last"])
        ticks["last"] = now

    def layout_changed() -> None:
        if state.layout is not None and state.layout.kind not in shown:
            shown[state.layout.kind] = clock.elapsed() / 1000

    state.layout_changed.connect(layout_changed)
    timer = QTimer(interval=TICK_MS, timeout=tick)
    clock.start()
    timer.start()
    session.recompute_layout()  # the moment the vectors are ready
    while UMAP not in shown or view.in_transition():
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    frame = transition_frame_ms(view)
    session.shutdown()
    view.close()
    return {"quick": shown.get(QUICK, float("nan")), "umap": shown[UMAP], "stall": ticks["worst"] / 1000,
            "frame": frame, "warm_up": warm_up_s}


def transition_frame_ms(view: MapView) -> float:
    """One frame of the quick->UMAP glide: moving every point (not the paint)."""
    xy = view._xy.copy()
    started = time.perf_counter()
    for t in np.linspace(0, 1, 10):
        view.scatter.move_points(xy * (1 + 0.01 * t))
    return (time.perf_counter() - started) / 10 * 1000


def readability(n: int = 3000) -> dict[str, float]:
    """Trustworthiness (10 neighbours, cosine) of each candidate for the quick layout, and of
    UMAP's, on the same vectors: how many of each point's neighbours on the map are neighbours
    in feature space too."""
    from sklearn.manifold import trustworthiness

    vectors = clustered_vectors(n, seed=1)
    ids = np.arange(n)
    projection = np.random.default_rng(0).standard_normal((DIM, 2)).astype(np.float32)
    layouts = {
        "quick layout (2 principal axes)": quick_layout(vectors, ids).xy,
        "random projection": vectors @ projection,
        "UMAP": compute_layout(vectors, ids).xy,
    }
    return {name: trustworthiness(vectors, xy, n_neighbors=10, metric="cosine") for name, xy in layouts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--states", default="cold,warm,warmed")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    sizes = [int(s) for s in args.sizes.split(",")]
    states = args.states.split(",")
    load = os.getloadavg()[0]
    rows = []
    for n in sizes:
        warm_cache = Path(tempfile.mkdtemp(prefix="bench-numba-warm-"))
        for state in states:
            cache = Path(tempfile.mkdtemp(prefix="bench-numba-cold-")) if state == "cold" else warm_cache
            if state != "cold" and not any(cache.rglob("*.nbi")):  # fill the warm cache first
                fresh_map_process(cache).warm_up()
            result = one_run(app, n, cache, warm_up=state == "warmed")
            rows.append((n, state, result))
            print(f"  {n} {state}: {result}", file=sys.stderr, flush=True)
    if layout_worker._shared is not None:
        layout_worker._shared.stop()
    fresh_map_process(Path(tempfile.mkdtemp(prefix="bench-numba-"))).warm_up()
    scores = readability()
    layout_worker._shared.stop()
    print(f"{os.cpu_count()} cores, load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    print("| images | numba cache | to quick map s | to UMAP map s | worst stall ms | glide frame ms | warm-up s (before) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for n, state, r in rows:
        print(f"| {n} | {state} | {r['quick']:.2f} | {r['umap']:.1f} | {r['stall'] * 1000:.0f} | "
              f"{r['frame']:.1f} | {r['warm_up']:.1f} |")
    print("\n| layout of 3000 clustered vectors | trustworthiness (10 neighbours) |\n| --- | ---: |")
    for name, score in scores.items():
        print(f"| {name} | {score:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
