"""The map of a large collection: UMAP fitted on a sample, the rest placed by its transform
(core/layout.py, FIT_ROWS), against a fit on every image: time and how well the map keeps
labels together (kNN-label accuracy in 2D: the share of each image's 10 nearest points on the
map that carry its label).

    python bench/bench_big_layout.py [--sizes 100000,1000000] [--real FOLDER]

- a real labelled set (default: bench_codes.py's 455 variants of the sample's photos, label =
  photo): every image fitted, against a fit on 100 of them;
- bench/synthetic.py's collections (label = cluster folder), from what the app computes the map
  of at that size (SearchIndex.layout_vectors: the codes' projection): at 100k a fit on all
  against a fit on 10k; at 1M the default (a fit on FIT_ROWS).
Accuracy is measured on at most 20k images (all of the real set).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

import synthetic  # noqa: E402 (bench/synthetic.py; sets EXPLORER_DATA_DIR under bench/out)

from explorer.core import layout  # noqa: E402
from explorer.core.analysis import label_codes  # noqa: E402
from explorer.core.search import SearchIndex  # noqa: E402

MODEL = "efficientnet-lite0"


def knn_label_accuracy(xy: np.ndarray, labels: np.ndarray, k: int = 10, at_most: int = 20_000) -> float:
    rows = np.random.default_rng(0).choice(len(xy), min(at_most, len(xy)), replace=False)
    _, nearest = cKDTree(xy).query(xy[rows], k + 1)
    return float((labels[nearest[:, 1:]] == labels[rows, None]).mean())


def timed_layout(vectors: np.ndarray, ids: np.ndarray, fit_rows: int) -> tuple[np.ndarray, float]:
    layout.FIT_ROWS = fit_rows
    started = time.perf_counter()
    result = layout.compute_layout(vectors, ids)
    assert result is not None
    return result.xy, time.perf_counter() - started


def rows_for(name: str, vectors: np.ndarray, ids: np.ndarray, labels: np.ndarray,
             fits: list[int]) -> list[str]:
    out = []
    for fit_rows in fits:
        xy, seconds = timed_layout(vectors, ids, fit_rows)
        fitted = "all" if fit_rows >= len(ids) else f"{fit_rows}"
        out.append(f"| {name} | {len(ids)} | {fitted} | {seconds:.1f} s | {knn_label_accuracy(xy, labels):.3f} |")
        print(out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--real", type=Path)
    args = parser.parse_args()
    default_fit = layout.FIT_ROWS
    layout.shared_process().warm_up()  # numba's compiling is no part of the figures
    print("| set | images | UMAP fitted on | time | kNN-label accuracy (k=10) |\n|---|---:|---|---:|---:|")

    import bench_codes
    from explorer.core.indexer import index_folder
    from explorer.core.backbones import load_model
    folder = args.real or bench_codes.sample_variants()
    index_folder(folder, load_model(MODEL))
    index = SearchIndex.open(folder, MODEL)
    rows_for("real: sample variants", index.vectors, index.ids, label_codes(index.paths)[1], [len(index), 100])
    index.close()

    for n in [int(s) for s in args.sizes.split(",")]:
        index = SearchIndex.open(synthetic.synthetic_collection(n), MODEL)
        vectors, ids, labels = index.layout_vectors(), index.ids, label_codes(index.paths)[1]
        rows_for("synthetic", vectors, ids, labels, [n, 10_000] if n <= default_fit else [default_fit])
        index.close()
    layout.shared_process().stop()


if __name__ == "__main__":
    main()
