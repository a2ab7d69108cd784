"""A large synthetic collection, written through core, for GUI and search benchmarks.

Real tiny JPEG files on disk (so re-indexing finds them unchanged), clustered unit vectors as if
embedded by the default model (a decaying spectrum about each centre), their thumbnails, the
compact codes with the HNSW graph on them and a 2D layout, all stored by the same code the app
uses. Generated once under bench/out/ and reused.

    python bench/synthetic.py 100000
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.core.catalog import FileEntry  # noqa: E402
from explorer.core.indexer import update_search_files  # noqa: E402
from explorer.core.layout import Layout  # noqa: E402
from explorer.core.backbones import fetch_weights, get_spec  # noqa: E402
from explorer.core.store import Collection, Embedded, folder_dir  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
CLUSTERS = 200


def synthetic_collection(n: int, dim: int = 1280, seed: int = 0) -> Path:
    """Folder of n tiny photos with a complete collection; returns the folder."""
    folder = OUT / f"synthetic-{n}"
    os.environ.setdefault("EXPLORER_DATA_DIR", str(OUT / "data"))
    if (folder_dir(folder) / "efficientnet-lite0" / "layout.npz").exists():
        return folder
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLUSTERS, n)
    colours = rng.integers(30, 226, (CLUSTERS, 3))
    started = time.perf_counter()
    jpegs = []
    for c in range(CLUSTERS):  # one small JPEG per cluster, a colour swatch with a gradient
        pixels = np.clip(colours[c] + np.linspace(-30, 30, 48)[:, None, None], 0, 255)
        image = Image.fromarray(np.broadcast_to(pixels, (48, 64, 3)).astype(np.uint8))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        jpegs.append(buffer.getvalue())
    entries = []
    for i, label in enumerate(labels):
        path = folder / f"c{label:03d}" / f"img{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpegs[label])
        st = path.stat()
        entries.append(FileEntry(f"c{label:03d}/img{i:06d}.jpg", st.st_size, st.st_mtime_ns))
    print(f"wrote {n} files in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    centres = rng.normal(size=(CLUSTERS, dim)).astype(np.float32)
    spec = get_spec("efficientnet-lite0")
    collection = Collection(folder, spec.name, spec.dim, {
        "weights_sha256": fetch_weights(spec)[1], "preprocessing": spec.preprocessing.describe()})
    xy_centres = rng.normal(scale=10, size=(CLUSTERS, 2))
    # The spread about each centre has a decaying spectrum, as CNN features have (a few hundred
    # principal axes hold most of it), not isotropic noise, whose nearest neighbours all tie.
    spread = (np.arange(1, dim + 1) ** -0.6).astype(np.float32)
    spread *= 0.6 * np.sqrt(dim) / np.linalg.norm(spread)
    for start in range(0, n, 5000):
        block = slice(start, min(start + 5000, n))
        vectors = centres[labels[block]] + spread * rng.normal(size=(len(labels[block]), dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        collection.add_batch([Embedded(e, v, 64, 48, jpegs[lab]) for e, v, lab in
                              zip(entries[block], vectors, labels[block])], [])
    collection.compact()
    t = time.perf_counter()
    update_search_files(collection, -1, np.empty(0, np.int64), [])  # as a first index run ends
    print(f"codes + HNSW build {time.perf_counter() - t:.1f} s", file=sys.stderr)
    ids, _, _ = collection.live_files()
    # The map: cluster centres plus spread, as UMAP would draw well-separated clusters.
    order = np.argsort(ids)
    xy = xy_centres[labels] + rng.normal(scale=0.6, size=(n, 2))
    Layout(ids[order], xy[order].astype(np.float32)).save(collection.dir, collection.generation)
    collection.close()
    print(f"synthetic collection of {n} ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return folder


if __name__ == "__main__":
    print(synthetic_collection(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
