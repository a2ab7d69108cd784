"""What a large collection costs through core: open, query + histogram, top-k search, the HNSW
graph's build and incremental update, disk size and peak memory (issue 12).

    python bench/bench_million.py [--sizes 100000,1000000] [--queries 30]

Collections are bench/synthetic.py's (clustered unit vectors of d=1280, tiny JPEG files and
thumbnails, codes and graph made as an index run ends), built once under bench/out/. Each
measurement runs in a fresh subprocess (its peak RSS is VmHWM), page cache warm:

- open: `SearchIndex.open` (lazy vectors at 20k+ images), then the first query, which maps the
  codes; RSS after both;
- query: the Rocchio vector of one stored image's vector -> similarity of every image (codes)
  -> histogram + top-20 ranking (what the app's query model and histogram compute), median;
- search: 10 nearest by the graph on the codes, re-ranked on full vectors read from disk, median,
  and its recall@10 against exact search on all full vectors (loaded after the RSS is read);
- graph: a fresh build on the codes (and, below 200k, on the full vectors, as before);
- update: on a copy of the collection, 1% new images stored as an index run stores them, then
  `update_search_files` (codes encoded for the new ones, graph updated in place); and the same
  after removing them.
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

import numpy as np  # noqa: E402

import synthetic  # noqa: E402 (bench/synthetic.py)

MODEL = "efficientnet-lite0"


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_ms(work, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        work(q)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def measure_open(folder: Path, n_queries: int) -> dict:
    import torch  # noqa: F401 (the app has it loaded: the codes' matmul is torch's)

    from explorer.core import analysis
    from explorer.core.search import SearchIndex

    t = time.perf_counter()
    index = SearchIndex.open(folder, MODEL)
    opened = time.perf_counter() - t
    rng = np.random.default_rng(1)
    rows = rng.choice(len(index), n_queries + 1, replace=False)
    queries = index.vectors_of(rows)

    def query(q: np.ndarray) -> None:
        scores = index.similarities(analysis.rocchio(q[None, :], None, 0.5))
        analysis.similarity_histogram(scores, 20)
        analysis.ranking(scores, 20)

    t = time.perf_counter()
    query(queries[0])
    first = time.perf_counter() - t
    out = {"open_s": opened, "first_query_s": first, "lazy": index._vectors is None}
    out["query_ms"] = median_ms(query, queries[1:])
    index.search(queries[0], 10)  # the graph loaded
    out["search_ms"] = median_ms(lambda q: index.search(q, 10), queries[1:])
    out["rss_mb"], out["hwm_mb"] = rss_mb(), rss_mb("VmHWM")
    approx = [{h.path for h in index.search(q, 10)} for q in queries[1:]]
    exact = [{h.path for h in index.search(q, 10, exact=True)} for q in queries[1:]]
    out["recall10"] = float(np.mean([len(a & e) / 10 for a, e in zip(approx, exact)]))
    return out


def measure_graph(folder: Path) -> dict:
    from explorer.core.ann import AnnIndex
    from explorer.core.codes import Codes
    from explorer.core.store import Collection

    collection = Collection.open_existing(folder, MODEL)
    codes = Codes.load(collection.dir)
    assert codes is not None
    t = time.perf_counter()
    codes.build_graph()
    out = {"graph_codes_s": time.perf_counter() - t, "dims": codes.codebook.dims}
    if len(codes.ids) < 200_000:
        ids, _, vectors = collection.live()
        t = time.perf_counter()
        AnnIndex.build(vectors, ids)
        out["graph_full_s"] = time.perf_counter() - t
    out["hwm_mb"] = rss_mb("VmHWM")
    return out


def measure_update(folder: Path, share: float = 0.01) -> dict:
    from explorer.core.catalog import FileEntry
    from explorer.core.indexer import update_search_files
    from explorer.core.store import Collection, Embedded

    collection = Collection.open_existing(folder, MODEL)
    ids, paths, slots = collection.live_files()
    rng = np.random.default_rng(2)
    n_new = int(len(ids) * share)
    near = collection.vectors_at(slots[rng.choice(len(ids), n_new, replace=False)])
    near += 0.3 * rng.normal(size=near.shape).astype(np.float32) / np.sqrt(near.shape[1])
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    thumbnail = collection.thumbnails.get(paths[0])
    entries = [FileEntry(f"added/new{i:07d}.jpg", 1000, 1) for i in range(n_new)]
    out: dict = {"added": n_new}
    started_at, touched = collection.generation, []
    t = time.perf_counter()
    for start in range(0, n_new, 256):  # batches as an index run stores them
        touched += collection.add_batch([Embedded(e, v, 64, 48, thumbnail) for e, v in
                                         zip(entries[start:start + 256], near[start:start + 256])], [])
    collection.compact()
    out["store_s"] = time.perf_counter() - t
    t = time.perf_counter()
    update_search_files(collection, started_at, np.asarray(touched, np.int64), [])
    out["update_add_s"] = time.perf_counter() - t
    started_at = collection.generation
    gone = collection.remove([e.path for e in entries])
    t = time.perf_counter()
    update_search_files(collection, started_at, np.empty(0, np.int64), gone)
    out["update_remove_s"] = time.perf_counter() - t
    out["hwm_mb"] = rss_mb("VmHWM")
    return out


def in_subprocess(what: str, folder: Path, data_dir: Path, *args: str) -> dict:
    env = {**os.environ, "EXPLORER_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, __file__, "--child", what, str(folder), *args],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{what} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def disk_mb(directory: Path) -> dict[str, float]:
    groups: dict[str, float] = {}
    for path in directory.rglob("*"):
        if path.is_file():
            name = path.name
            kind = "vectors" if name.startswith("vectors") or path.suffix == ".npy" and name != "codes.npy" \
                else name
            groups[kind] = groups.get(kind, 0) + path.stat().st_size / 2**20
    return groups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        what, folder, *rest = args.child
        work = {"open": lambda: measure_open(Path(folder), int(rest[0])),
                "graph": lambda: measure_graph(Path(folder)), "update": lambda: measure_update(Path(folder))}
        print(json.dumps(work[what]()))
        return

    print("| images | measure | value |\n|---:|---|---:|")
    for n in [int(s) for s in args.sizes.split(",")]:
        folder = synthetic.synthetic_collection(n)
        data_dir = Path(os.environ["EXPLORER_DATA_DIR"])
        from explorer.core.store import folder_dir
        collection_dir = folder_dir(folder) / MODEL
        rows = [(k, f"{v:.0f} MB") for k, v in sorted(disk_mb(collection_dir).items())]
        opened = in_subprocess("open", folder, data_dir, str(args.queries))
        rows += [("open (SearchIndex.open)", f"{opened['open_s']:.2f} s"),
                 ("vectors left on disk", str(opened["lazy"])),
                 ("first query (codes mapped)", f"{opened['first_query_s'] * 1000:.0f} ms"),
                 ("query -> scores + histogram + top 20 (median)", f"{opened['query_ms']:.1f} ms"),
                 ("top-10 search, graph + re-rank (median)", f"{opened['search_ms']:.1f} ms"),
                 ("recall@10 of that search", f"{opened['recall10']:.3f}"),
                 ("RSS after open + queries (peak)", f"{opened['rss_mb']:.0f} MB ({opened['hwm_mb']:.0f})")]
        graph = in_subprocess("graph", folder, data_dir)
        rows.append((f"HNSW build on the {graph['dims']}-d codes", f"{graph['graph_codes_s']:.1f} s"))
        if "graph_full_s" in graph:
            rows.append(("HNSW build on the 1280-d vectors", f"{graph['graph_full_s']:.1f} s"))
        with tempfile.TemporaryDirectory(dir=synthetic.OUT) as scratch:
            shutil.copytree(data_dir / collection_dir.parent.relative_to(data_dir),
                            Path(scratch) / collection_dir.parent.relative_to(data_dir))
            update = in_subprocess("update", folder, Path(scratch))
        rows += [(f"store {update['added']} new images (1%)", f"{update['store_s']:.1f} s"),
                 ("codes + graph updated for them", f"{update['update_add_s']:.1f} s"),
                 ("codes + graph updated after removing them", f"{update['update_remove_s']:.1f} s"),
                 ("peak RSS of that update", f"{update['hwm_mb']:.0f} MB")]
        for measure, value in rows:
            print(f"| {n} | {measure} | {value} |", flush=True)


if __name__ == "__main__":
    main()
