"""Core performance bench: decode and forward cost, indexing throughput against its CPU bound
for each inference backend, no-change re-index, and HNSW vs exact search. Prints a markdown
table and a summary per backend; writes bench/out/core.json.

    python bench/bench_core.py [--big N] [--small N] [--quick] [--backends torch,onnxruntime]

Each indexing run happens in a fresh subprocess (``_index`` sub-command) with its own
EXPLORER_DATA_DIR, so its peak RSS is its own and the user's data directory is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from explorer.core.images import decode_for_index

if TYPE_CHECKING:  # torch is imported only after the decode timings, so they run without it
    from explorer.core.backbones import LoadedModel

OUT = Path(__file__).resolve().parent / "out"
MODEL = "efficientnet-lite0"
BATCH = 32
CORES = os.cpu_count() or 1
Row = dict[str, object]


# --- test images -------------------------------------------------------------------------------


def make_image(seed: int, width: int, height: int) -> Image.Image:
    """A deterministic photo-like image: smooth gradients, mid-frequency blotches, shapes, grain.

    Flat colour would compress to almost nothing and decode unrealistically fast; this lands
    near real photos (about 3.5 MB and ~40 ms draft decode for 12 MP at q90).
    """
    rng = np.random.default_rng(seed)

    def field(rows: int, cols: int) -> Image.Image:  # random colours upsampled = smooth field
        return Image.fromarray(rng.integers(0, 256, (rows, cols, 3), np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC)

    img = Image.blend(field(4, 5), field(max(2, height // 40), max(2, width // 40)), 0.25)
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = (x0, y0, x0 + int(rng.integers(width // 20, width // 3)),
               y0 + int(rng.integers(height // 20, height // 3)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    # Luminance grain of +-10 levels around 128, added by Pillow (numpy int16 maths is 6x slower).
    grain = Image.fromarray(rng.integers(118, 139, (height, width), np.uint8))
    return ImageChops.add(img, Image.merge("RGB", [grain] * 3), scale=1.0, offset=-128)


def image_pool(kind: str, count: int, width: int, height: int) -> list[Path]:
    """The first `count` images of a cached pool; generated once, reused by later runs."""
    pool = OUT / "images" / f"{kind}-{width}x{height}-q90-v1"
    pool.mkdir(parents=True, exist_ok=True)
    paths = [pool / f"{i:05d}.jpg" for i in range(count)]
    for i, path in enumerate(paths):
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            # The seed depends on the size too, so the two pools hold different scenes.
            make_image(i * 7919 + width, width, height).save(tmp, "JPEG", quality=90)
            os.replace(tmp, path)  # an interrupted run never leaves a half-written image
    return paths


def linked_folder(paths: list[Path]) -> Path:
    """A folder holding exactly these images (hard links: no copying, same size and mtime)."""
    folder = Path(tempfile.mkdtemp(prefix="photos-", dir=OUT))
    for path in paths:
        try:
            os.link(path, folder / path.name)
        except OSError:
            shutil.copy2(path, folder / path.name)
    return folder


# --- per-image CPU cost ------------------------------------------------------------------------


def decode_cost(paths: list[Path], size: int) -> tuple[float, float, list[np.ndarray]]:
    """Single-threaded decode_for_index: (CPU s per image, wall s per image, model inputs)."""
    pixels = []
    cpu, wall = time.process_time(), time.perf_counter()
    for path in paths:
        pixels.append(decode_for_index(path, size).pixels)
    return (time.process_time() - cpu) / len(paths), (time.perf_counter() - wall) / len(paths), pixels


def forward_cost(model: "LoadedModel", pixels: list[np.ndarray], reps: int) -> tuple[float, float]:
    """model.embed on a batch of 32 on all cores: (wall s, CPU s) per image, the best of `reps`
    batches (the machine is shared: the fastest batch is the one least disturbed)."""
    batch = np.stack([pixels[i % len(pixels)] for i in range(BATCH)])
    model.embed(batch)  # warm-up: oneDNN / the runtime pick and cache their kernels on the first call
    best = (float("inf"), float("inf"))
    for _ in range(reps):
        cpu, wall = time.process_time(), time.perf_counter()
        model.embed(batch)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best[0] / BATCH, best[1] / BATCH


# --- indexing, in a subprocess -----------------------------------------------------------------


def _index_main(folder: str, preload: bool, backend: str) -> None:
    """Internal sub-command: index `folder` once and print one JSON line of measurements."""
    from explorer.core.indexer import index_folder
    from explorer.core.backbones import load_model

    started = time.perf_counter()
    # preloaded: throughput excludes start-up
    model = load_model(MODEL, backend=backend) if preload else MODEL
    load_s = time.perf_counter() - started
    marks: dict[str, tuple[float, float]] = {}

    def progress(done: int, total: int, message: str) -> None:
        # The embedding phase runs from the "embedding" message to the last batch's message.
        if message == "embedding" or message.startswith("embedded"):
            marks.setdefault("start", (time.perf_counter(), time.process_time()))
            marks["end"] = (time.perf_counter(), time.process_time())

    report = index_folder(folder, model=model, progress=progress, backend=backend)
    (w0, c0), (w1, c1) = marks.get("start", (0.0, 0.0)), marks.get("end", (0.0, 0.0))
    print(json.dumps({
        "embedded": report.embedded, "unchanged": report.unchanged, "skipped": report.skipped,
        "seconds": report.seconds, "images_per_second": report.images_per_second,
        "load_s": load_s, "embed_wall_s": w1 - w0, "embed_cpu_s": c1 - c0,
        "maxrss_mb": peak_rss_mb(),
    }))


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux carries ru_maxrss across fork+exec (a child would report
    its parent's peak, here over 1 GB of torch), so read the per-address-space VmHWM instead."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (Linux; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_index(folder: Path, data_dir: Path, preload: bool, backend: str) -> dict:
    cmd = [sys.executable, __file__, "_index", str(folder), backend] + (["--preload"] if preload else [])
    env = {**os.environ, "EXPLORER_DATA_DIR": str(data_dir)}
    started, busy, own = time.perf_counter(), machine_busy_s(), children_cpu_s()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    # The machine is shared: what other processes used meanwhile says how far to trust the wall
    # times (loadavg is a 1-minute average and cannot tell).
    others = machine_busy_s() - busy - (children_cpu_s() - own)
    result["others_cores"] = max(0.0, others) / result["process_s"]
    return result


def index_rows(name: str, paths: list[Path], decode_cpu: float, forward_cpu: float,
               backend: str) -> list[Row]:
    folder, data_dir = linked_folder(paths), Path(tempfile.mkdtemp(prefix="data-", dir=OUT))
    try:
        first = run_index(folder, data_dir, preload=True, backend=backend)
        again = run_index(folder, data_dir, preload=False, backend=backend)  # by name, as on re-open
    finally:
        shutil.rmtree(folder)
        shutil.rmtree(data_dir)
    assert first["embedded"] == len(paths) and again["unchanged"] == len(paths), (first, again)
    bound = CORES / (decode_cpu + forward_cpu)
    phase = first["embedded"] / first["embed_wall_s"]
    b = f"index {name} ({len(paths)}), {backend}"
    return [
        row(b, "index_folder images/s (model preloaded)", first["images_per_second"], "img/s"),
        row(b, "embedding-phase images/s", phase, "img/s"),
        row(b, f"bound = {CORES} cores / (decode + forward CPU s)", bound, "img/s"),
        row(b, "index_folder / bound", first["images_per_second"] / bound * 100, "%"),
        row(b, "embedding phase / bound", phase / bound * 100, "%"),
        row(b, "CPU s per image in the pipeline", first["embed_cpu_s"] / first["embedded"] * 1e3, "ms"),
        row(b, "core utilisation in the embedding phase",
            first["embed_cpu_s"] / (first["embed_wall_s"] * CORES) * 100, "%"),
        row(b, "other processes' CPU during this run", first["others_cores"], "cores"),
        row(b, "model load (not in the above)", first["load_s"], "s"),
        row(b, "peak RSS (VmHWM)", first["maxrss_mb"], "MB"),
        row(b, "no-change re-index: index_folder", again["seconds"], "s"),
        row(b, "no-change re-index: whole process", again["process_s"], "s"),
        row(b, "no-change re-index: peak RSS", again["maxrss_mb"], "MB"),
    ]


# --- search ------------------------------------------------------------------------------------


def clustered_vectors(n: int, dim: int, rng: np.random.Generator, clusters: int = 1000) -> np.ndarray:
    """Unit vectors around `clusters` centres (cos ~0.7 to their centre): real embeddings cluster,
    and uniform random vectors make HNSW recall look far worse than it is."""
    centres = rng.standard_normal((clusters, dim), np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, clusters, n)]
    x += rng.standard_normal((n, dim), np.float32) / np.sqrt(dim)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def search_rows(n: int, dim: int, k: int = 10, n_queries: int = 200) -> list[Row]:
    from explorer.core.ann import AnnIndex, exact_search

    rng = np.random.default_rng(n)
    both = clustered_vectors(n + n_queries, dim, rng)
    vectors, queries = np.ascontiguousarray(both[:n]), both[n:]
    started, busy, own = time.perf_counter(), machine_busy_s(), time.process_time()
    ann = AnnIndex.build(vectors, np.arange(n))
    build_s = time.perf_counter() - started

    def median_ms(search: Callable[[np.ndarray], object]) -> float:
        times = []
        for q in queries:
            t = time.perf_counter()
            search(q[None])
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3

    hnsw_ms = median_ms(lambda q: ann.search(q, k))
    exact_ms = median_ms(lambda q: exact_search(vectors, q, k))
    found, truth = ann.search(queries, k)[0], exact_search(vectors, queries, k)[0]
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)])
    own = time.process_time() - own
    others = (machine_busy_s() - busy - own) / (time.perf_counter() - started)
    b = f"search {n // 1000}k x {dim}"
    return [row(b, "HNSW build", build_s, "s"), row(b, f"HNSW query k={k} (median)", hnsw_ms, "ms"),
            row(b, f"exact query k={k} (median)", exact_ms, "ms"),
            row(b, f"recall@{k} HNSW vs exact ({n_queries} queries)", recall, ""),
            row(b, "other processes' CPU during this block", max(0.0, others), "cores")]


# --- main --------------------------------------------------------------------------------------


def row(bench: str, metric: str, value: float, unit: str) -> Row:
    return {"bench": bench, "metric": metric, "value": float(value), "unit": unit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images, skip the 100k search")
    parser.add_argument("--big", type=int, help="12-MP JPEGs (default 64, quick 16)")
    parser.add_argument("--small", type=int, help="300-px JPEGs (default 512, quick 128)")
    parser.add_argument("--backends", help="comma-separated (default: every installed backend)")
    parser.add_argument("--no-search", action="store_true", help="skip the HNSW section")
    args = parser.parse_args()
    from explorer.core import backends as backend_registry  # numpy only: no torch yet

    chosen = args.backends.split(",") if args.backends else backend_registry.installed()
    n_big = args.big if args.big is not None else (16 if args.quick else 64)
    n_small = args.small if args.small is not None else (128 if args.quick else 512)
    OUT.mkdir(exist_ok=True)
    started, load_before = time.perf_counter(), os.getloadavg()

    big = image_pool("big", n_big, 4000, 3000)
    small = image_pool("small", n_small, 300, 225)
    size = 224  # efficientnet-lite0's input; checked against the model below
    big_cpu, big_wall, big_pixels = decode_cost(big, size)
    small_cpu, small_wall, _ = decode_cost(small, size)

    from explorer.core.backbones import load_model  # torch only now, so decoding ran without it

    rows = [
        row("decode 12 MP JPEG (1 thread)", "decode_for_index CPU", big_cpu * 1e3, "ms/img"),
        row("decode 12 MP JPEG (1 thread)", "decode_for_index wall", big_wall * 1e3, "ms/img"),
        row("decode 300 px JPEG (1 thread)", "decode_for_index CPU", small_cpu * 1e3, "ms/img"),
        row("decode 300 px JPEG (1 thread)", "decode_for_index wall", small_wall * 1e3, "ms/img"),
    ]
    summary: dict[str, dict[str, float]] = {}
    for backend in chosen:
        model = load_model(MODEL, backend=backend)
        assert model.input_size == size
        fwd_wall, fwd_cpu = forward_cost(model, big_pixels, reps=3 if args.quick else 6)
        dim = model.spec.dim
        del model
        f = f"forward batch {BATCH} ({CORES} threads), {backend}"
        rows += [row(f, "model.embed wall", fwd_wall * 1e3, "ms/img"),
                 row(f, "model.embed CPU", fwd_cpu * 1e3, "ms/img")]
        big_rows = index_rows("12 MP", big, big_cpu, fwd_cpu, backend)
        small_rows = index_rows("300 px", small, small_cpu, fwd_cpu, backend)
        rows += big_rows + small_rows
        summary[backend] = {"forward": 1 / fwd_wall, "small": small_rows[0]["value"],
                            "small_bound": small_rows[2]["value"], "big": big_rows[0]["value"],
                            "big_bound": big_rows[2]["value"], "rss": big_rows[9]["value"]}
    del big_pixels
    for n in [] if args.no_search else [10_000] if args.quick else [10_000, 100_000]:
        rows += search_rows(n, dim)

    meta = {"cores": CORES, "load_before": load_before, "load_after": os.getloadavg(),
            "wall_s": time.perf_counter() - started, "big": n_big, "small": n_small}
    (OUT / "core.json").write_text(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1))
    print(f"{CORES} cores, load {load_before[0]:.2f} -> {meta['load_after'][0]:.2f}, "
          f"bench took {meta['wall_s']:.0f} s\n")
    print("| bench | metric | value | unit |\n| --- | --- | ---: | --- |")
    for r in rows:
        v = r["value"]
        print(f"| {r['bench']} | {r['metric']} | {v:.3f} | {r['unit']} |" if v < 10 else
              f"| {r['bench']} | {r['metric']} | {v:.1f} | {r['unit']} |")
    print_summary(summary)


def print_summary(summary: dict[str, dict[str, float]]) -> None:
    """One line per backend; the ratios are against torch when it was measured."""
    base = summary.get("torch")
    print("\n| backend | forward img/s | index 300 px img/s | x torch | bound (% reached) "
          "| index 12 MP img/s | x torch | bound (% reached) | peak RSS MB |\n" + "| --- " * 9 + "|")
    for backend, s in summary.items():
        ratio = (lambda key: f"{s[key] / base[key]:.2f}") if base else (lambda key: "-")
        print(f"| {backend} | {s['forward']:.0f} | {s['small']:.0f} | {ratio('small')} | "
              f"{s['small_bound']:.0f} ({s['small'] / s['small_bound']:.0%}) | {s['big']:.1f} | "
              f"{ratio('big')} | {s['big_bound']:.1f} ({s['big'] / s['big_bound']:.0%}) | {s['rss']:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "_index":
        _index_main(sys.argv[2], preload="--preload" in sys.argv[4:], backend=sys.argv[3])
    else:
        main()
