"""What Ray costs: `index_folder` on this machine against `--ray` (a local Ray instance started
for the job, as `explorer index FOLDER --ray` does) with 1 and 2 worker processes.

    python bench/bench_ray.py [--images N] [--photos N] [--repeats R]

Two folders of the bench's generated JPEGs (bench_core.image_pool): N small 300x225 ones, where
the forward pass dominates, and N 2000x1500 ones, where decoding weighs more. Each run is a
fresh subprocess with its own EXPLORER_DATA_DIR (nothing is reused between runs). Per run:

- wall s: the whole `index_folder` call (Ray's start, each worker's model load, the job, the
  save);
- to first batch s: until the first batch was committed (start-up: model load, or Ray + actors);
- steady img/s: images committed from the first batch to the last, over that time (what a long
  run's rate tends to);
- cores busy: CPU the whole machine used meanwhile over the wall time, every process counted
  (Ray's own and its workers are not this process's children): on a quiet machine, the run's.

Then the driver alone: how many rows/s it can commit when the results arrive instantly, the
ceiling of any cluster. Prints a markdown table; writes bench/out/ray.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_core import OUT, image_pool, linked_folder, machine_busy_s  # noqa: E402

MODES = {"here": None, "ray, 1 worker": 1, "ray, 2 workers": 2}


def _index_main(folder: str, workers: str) -> None:
    """Internal sub-command: index `folder` once (workers "0": here) and print one JSON line."""
    from explorer.core.cluster import RayCluster
    from explorer.core.indexer import index_folder

    marks: list[tuple[float, int]] = []

    def progress(done: int, total: int, message: str) -> None:
        if message.startswith("embedded"):
            marks.append((time.perf_counter(), done))

    started = time.perf_counter()
    cluster = RayCluster(workers=int(workers)) if int(workers) else None
    report = index_folder(folder, progress=progress, cluster=cluster)
    wall = time.perf_counter() - started
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    print(json.dumps({
        "embedded": report.embedded, "wall_s": wall, "first_batch_s": t0 - started,
        "steady": (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0, "backend": report.backend,
    }))


def run(folder: Path, workers: int | None) -> dict:
    data = Path(tempfile.mkdtemp(prefix="data-", dir=OUT))
    env = {**os.environ, "EXPLORER_DATA_DIR": str(data)}
    started, busy = time.perf_counter(), machine_busy_s()
    try:
        out = subprocess.run([sys.executable, __file__, "_index", str(folder), str(workers or 0)],
                             env=env, check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(data, ignore_errors=True)
    result = json.loads(out.strip().splitlines()[-1])
    elapsed = time.perf_counter() - started
    result["cores"] = (machine_busy_s() - busy) / elapsed
    return result


def driver_ceiling(n: int, batch: int = 32) -> float:
    """Rows/s the driver alone can commit (the one SQLite writer, the shards, the thumbnails):
    the cluster's ceiling however many workers feed it. Vectors and ~10 KB thumbnails are made
    beforehand, as workers would send them."""
    import io

    import numpy as np

    from bench_core import make_image
    from explorer.core.catalog import FileEntry
    from explorer.core.store import Collection, Embedded

    data = Path(tempfile.mkdtemp(prefix="data-", dir=OUT))
    os.environ["EXPLORER_DATA_DIR"] = str(data)
    buffer = io.BytesIO()
    make_image(1, 256, 192).save(buffer, "JPEG", quality=85)
    thumbnail = buffer.getvalue()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 1280)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    entries = [FileEntry(f"d{i // 1000:03d}/img{i:07d}.jpg", 3_000_000 + i, 1_700_000_000_000_000_000 + i)
               for i in range(n)]
    collection = Collection(OUT / "no-such-folder", "efficientnet-lite0", 1280, {"weights_sha256": "x", "preprocessing": "x"})
    started = time.perf_counter()
    for start in range(0, n, batch):
        collection.add_batch([Embedded(e, v, 2000, 1500, thumbnail)
                              for e, v in zip(entries[start:start + batch], vectors[start:start + batch])], [])
    rate = n / (time.perf_counter() - started)
    collection.close()
    shutil.rmtree(data, ignore_errors=True)
    print(f"\ndriver alone: {rate:.0f} rows/s committed ({n} rows, batches of {batch}, "
          f"{len(thumbnail) / 1000:.0f} KB thumbnails)")
    return rate


def main() -> None:
    if sys.argv[1:2] == ["_index"]:
        return _index_main(*sys.argv[2:4])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=600, help="small JPEGs (default 600)")
    parser.add_argument("--photos", type=int, default=160, help="2000x1500 JPEGs (default 160)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode, interleaved")
    parser.add_argument("--driver-rows", type=int, default=20000, help="rows of the driver-alone run")
    args = parser.parse_args()

    sets = {f"{args.images} x 300x225": image_pool("small", args.images, 300, 225),
            f"{args.photos} x 2000x1500": image_pool("photo", args.photos, 2000, 1500)}
    rows = []
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; each row the median of {args.repeats} "
          "interleaved runs\n")
    print("| set | mode | wall s | to first batch s | steady img/s | vs here | cores busy | ran |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, paths in sets.items():
        folder = linked_folder(paths)
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.repeats):
            for mode, workers in MODES.items():
                runs[mode].append(run(folder, workers))
        shutil.rmtree(folder, ignore_errors=True)
        here = statistics.median(r["steady"] for r in runs["here"])
        for mode, results in runs.items():
            med = {k: statistics.median(r[k] for r in results) for k in ("wall_s", "first_batch_s", "steady", "cores")}
            rows.append({"set": name, "mode": mode, **med, "backend": results[0]["backend"]})
            print(f"| {name} | {mode} | {med['wall_s']:.1f} | {med['first_batch_s']:.1f} | {med['steady']:.1f} "
                  f"| {med['steady'] / here:.2f} | {med['cores']:.2f} | {results[0]['backend']} |", flush=True)
    ceiling = driver_ceiling(args.driver_rows)
    (OUT / "ray.json").write_text(json.dumps({"runs": rows, "driver_rows_per_s": ceiling}, indent=2))


if __name__ == "__main__":
    main()
