"""What the checks on open cost: opening a collection for search with and without them.

`SearchIndex.open` (what the app and `explorer search` do: the collection's open plus `live()`),
page cache warm, median (and fastest) of --repeats, runs interleaved: with the checks off in this
process only (no shard header check, no unit-length check; quick_check is not part of this
open), with them on as they run (shards unchanged since they were last known good are trusted:
a stat each), and with every shard's vectors checked (as after a shard changed). Then each
check alone: SQLite's quick_check(3) on index.sqlite (what `explorer index` and `explorer check`
run) and on thumbs.sqlite (`explorer check` only), the shard headers (`Collection._check_shards`),
the unit-length check over all live vectors (`store._not_unit`), and
`Collection.verify_vectors()` (what `explorer index` runs).

    python bench/bench_open.py [--sizes 10000,100000] [--repeats 5]

Collections are bench/synthetic.py's (random clustered unit vectors of d=1280, tiny JPEG
thumbnails), built in a temporary directory, EXPLORER_DATA_DIR included, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import synthetic  # noqa: E402 (bench/synthetic.py)

from explorer.core import store  # noqa: E402
from explorer.core.search import SearchIndex  # noqa: E402
from explorer.core.store import Collection, folder_dir  # noqa: E402

MODEL = "efficientnet-lite0"


@contextmanager
def nothing_known_good():
    """Every shard checked as if it had changed since its vectors were last known good."""
    saved = Collection._known_good
    Collection._known_good = lambda self: set()
    try:
        yield
    finally:
        Collection._known_good = saved


@contextmanager
def checks_off():
    """The collection's checks switched off, as before they were added."""
    saved = store._open_checked, Collection._check_shards, store._not_unit

    def open_unchecked(path: Path, schema: str, thorough: bool):
        db = store._connect(path)
        db.executescript(schema)
        return db

    store._open_checked, Collection._check_shards, store._not_unit = open_unchecked, lambda self: None, lambda v: 0
    try:
        yield
    finally:
        store._open_checked, Collection._check_shards, store._not_unit = saved


def timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def median_of(func, repeats: int) -> float:
    return statistics.median(timed(func) for _ in range(repeats))


def open_once(folder: Path) -> float:
    started = time.perf_counter()
    index = SearchIndex.open(folder, MODEL)
    elapsed = time.perf_counter() - started
    index.close()
    return elapsed


def quick_check_s(path: Path, repeats: int) -> float:
    db = store._connect(path)
    try:
        return median_of(lambda: db.execute("PRAGMA quick_check(3)").fetchall(), repeats)
    finally:
        db.close()


def measure(folder: Path, repeats: int) -> dict[str, float]:
    open_once(folder)  # warm the page cache
    with checks_off():
        open_once(folder)
    times = {"on": [], "off": [], "all": []}
    modes = {"on": nullcontext, "off": checks_off, "all": nothing_known_good}
    for r in range(repeats):  # interleaved, rotating which goes first
        for mode in list(modes)[r % 3:] + list(modes)[:r % 3]:
            with modes[mode]():
                times[mode].append(open_once(folder))
    directory = folder_dir(folder)
    collection = Collection.open_existing(folder, MODEL)
    try:
        vectors = collection.live()[2]
        result = {
            **{mode: statistics.median(values) for mode, values in times.items()},
            **{f"{mode}_min": min(values) for mode, values in times.items()},
            "qc_index": quick_check_s(directory / MODEL / "index.sqlite", repeats),
            "qc_thumbs": quick_check_s(directory / "thumbs.sqlite", repeats),
            "thumbs_mb": (directory / "thumbs.sqlite").stat().st_size / 1e6,
            "shards": median_of(collection._check_shards, repeats),
            "unit": median_of(lambda: store._not_unit(vectors), repeats),
            "verify": median_of(collection.verify_vectors, repeats),
        }
    finally:
        collection.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-open-"))
    os.environ["EXPLORER_DATA_DIR"] = str(scratch / "data")
    synthetic.OUT = scratch  # the photo folders too
    rows = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            built = time.perf_counter()
            folder = synthetic.synthetic_collection(n)
            print(f"  built {n} in {time.perf_counter() - built:.0f} s", file=sys.stderr, flush=True)
            load = os.getloadavg()[0]
            rows.append((n, load, measure(folder, args.repeats), os.getloadavg()[0]))
            print(f"  {n}: {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nOpen for search (SearchIndex.open), warm page cache, median of {args.repeats}; "
          f"{os.cpu_count()} cores, load average (1 min) before -> after each size\n")
    print("| images | open, checks off s | open, checks on s | + % | open, every shard checked s | + % | "
          "quick_check index.sqlite ms | quick_check thumbs.sqlite ms (MB) | shard headers ms | "
          "unit-length ms | verify_vectors s | load |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for n, before, r, after in rows:
        print(f"| {n} | {r['off']:.3f} | {r['on']:.3f} | {(r['on'] / r['off'] - 1) * 100:+.1f} | "
              f"{r['all']:.3f} | {(r['all'] / r['off'] - 1) * 100:+.1f} | "
              f"{r['qc_index'] * 1000:.1f} | {r['qc_thumbs'] * 1000:.1f} ({r['thumbs_mb']:.0f}) | "
              f"{r['shards'] * 1000:.2f} | {r['unit'] * 1000:.1f} | {r['verify']:.3f} | {before:.2f} -> {after:.2f} |")
        print(f"| {n} (fastest) | {r['off_min']:.3f} | {r['on_min']:.3f} | {(r['on_min'] / r['off_min'] - 1) * 100:+.1f} | "
              f"{r['all_min']:.3f} | {(r['all_min'] / r['off_min'] - 1) * 100:+.1f} | | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
