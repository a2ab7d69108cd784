"""What explaining costs: a similarity heatmap for one image, for a page of 50 results, and a
region query on a large collection, in milliseconds, with each installed inference backend.

- one heatmap (explain.py, on a bundled sample photo): forward pass (`feature_map`, with each
  backend's map runner), the exact grid (`contributions`), the overlay PNG (`overlay_png`, whose
  `heatmap` upsampling is also timed alone), and all of it in a row;
- a page: 50 different sample photos explained against one query, one by one, and decoded then
  run as one batch (`page_feature_maps`, what the grid's heatmap worker does), with each backend;
- a region of a 2x2 composite of four sample photos: `region_vector` by "crop" and by "pool"
  with each backend, then `SearchIndex.search` of it at --rows synthetic images
  (bench/synthetic.py) with HNSW and exact.

Medians of --repeats after one warm-up, on this machine's CPU (every core).

    python bench/bench_explain.py [--rows 100000] [--repeats 10]

Everything (EXPLORER_DATA_DIR and the synthetic collection included) lives in a temporary
directory removed at the end; building 100k images takes 70-110 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import synthetic  # noqa: E402 (bench/synthetic.py)

from explorer.core import backends, explain  # noqa: E402
from explorer.core.ann import EXACT_BELOW  # noqa: E402
from explorer.core.images import load_rgb, model_input  # noqa: E402
from explorer.core.backbones import DEFAULT_MODEL, get_spec, load_model  # noqa: E402
from explorer.core.search import SearchIndex  # noqa: E402
from explorer.resources import sample_folder  # noqa: E402

MODEL, PAGE, REGION = DEFAULT_MODEL, 50, (0.0, 0.0, 0.5, 0.5)  # the composite's top-left photo


def ms(func, repeats: int) -> float:
    """Median wall time of `func` in ms, after one warm-up call."""
    func()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def heatmap_once(photo: Path, query: np.ndarray, out: Path, backend: str, fmap=None) -> None:
    """Forward (unless `fmap` is given), grid, overlay: what showing one heatmap does."""
    fmap = explain.feature_map(MODEL, photo, backend) if fmap is None else fmap
    explain.overlay_png(photo, explain.contributions(fmap, query, get_spec(MODEL).pooling), out)


def batched_maps(photos: list[Path], backend: str) -> list[np.ndarray]:
    """The page decoded, then its maps in one forward pass (what the grid's heatmap worker does)."""
    return [m.astype(np.float64) for m in explain.page_feature_maps(MODEL, photos, backend)]


def composite(photos: list[Path], out: Path, side: int = 256) -> Path:
    canvas = Image.new("RGB", (2 * side, 2 * side))
    for i, photo in enumerate(photos[:4]):
        canvas.paste(load_rgb(photo).resize((side, side)), (i % 2 * side, i // 2 * side))
    canvas.save(out, quality=90)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="images in the synthetic collection")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    load, n, scratch = os.getloadavg()[0], args.repeats, Path(tempfile.mkdtemp(prefix="bench-explain-"))
    os.environ["EXPLORER_DATA_DIR"] = str(scratch / "data")
    synthetic.OUT = scratch
    photos = sorted(p for p in sample_folder().rglob("*.jpg"))
    one = sample_folder() / "astronaut" / "astronaut-original.jpg"
    page, png = photos[:PAGE], scratch / "overlay.png"
    rows: list[tuple[str, str, float, str]] = []
    try:
        torch_model = load_model(MODEL, backend="torch")
        query = torch_model.embed(model_input(load_rgb(photos[-1]), torch_model.input_size)[None])[0]
        fmap = explain.feature_map(MODEL, one, backends.TORCH)
        grid = explain.contributions(fmap, query, get_spec(MODEL).pooling)
        size = load_rgb(one).size
        explain.overlay_png(one, grid, png)
        drawn = Image.open(png).copy()
        encode = ms(lambda: drawn.save(scratch / "again.png"), n)
        shape = "x".join(map(str, fmap.shape))
        rows += [
            ("heatmap, one image: grid (contributions)", "numpy", ms(
                lambda: explain.contributions(fmap, query, get_spec(MODEL).pooling), n), f"map {shape}"),
            ("heatmap, one image: upsampling alone (heatmap)", "numpy", ms(
                lambda: explain.heatmap(grid.grid, (512, 512)), n), "part of overlay_png"),
            ("heatmap, one image: overlay (overlay_png)", "numpy", ms(
                lambda: explain.overlay_png(one, grid, png), n), f"decode, upsample, blend; of which PNG encode {encode:.1f}"),
        ]
        for backend in backends.installed():
            started = time.perf_counter()
            explain.map_runner(MODEL, backend)
            start_s = time.perf_counter() - started
            rows += [
                ("heatmap, one image: forward (feature_map)", backend,
                 ms(lambda: explain.feature_map(MODEL, one, backend), n),
                 f"{one.name} {size[0]}x{size[1]}; map runner started in {start_s:.1f} s"),
                ("heatmap, one image: all in a row", backend, ms(lambda: heatmap_once(one, query, png, backend), n), ""),
            ]
            page_ms = ms(lambda: [heatmap_once(p, query, png, backend) for p in page], n)
            batch_fwd = ms(lambda: batched_maps(page, backend), n)
            batch_ms = ms(lambda: [heatmap_once(p, query, png, backend, m)
                                   for p, m in zip(page, batched_maps(page, backend))], n)
            rows += [(f"page of {PAGE}, one by one: total", backend, page_ms, f"{page_ms / PAGE:.1f} ms per image"),
                     (f"page of {PAGE}, one batch: decode + forward", backend, batch_fwd,
                      f"{batch_fwd / PAGE:.1f} ms per image (the grid's heatmap worker)"),
                     (f"page of {PAGE}, one batch: total with overlays", backend, batch_ms,
                      f"{batch_ms / PAGE:.1f} ms per image")]
            print(f"  one image and page with {backend} done", file=sys.stderr, flush=True)

        source = composite([photos[i] for i in (0, 30, 60, 90)], scratch / "composite.jpg")
        built = time.perf_counter()
        folder = synthetic.synthetic_collection(args.rows)
        build_s = time.perf_counter() - built
        os.sync()  # the build's dirty pages written back now, not during the timings
        index = SearchIndex.open(folder, MODEL)
        try:
            how = "HNSW" if len(index) >= EXACT_BELOW else "exact, under EXACT_BELOW"
            for backend in backends.installed():
                model = torch_model if backend == backends.TORCH else load_model(MODEL, backend=backend)
                rows += [(f"region: vector by {method} (region_vector)", backend,
                          ms(lambda: explain.region_vector(model, source, REGION, method), n), model.describe_backend())
                         for method in explain.REGION_METHODS]
                print(f"  region with {backend} done", file=sys.stderr, flush=True)
            crop = explain.region_vector(torch_model, source, REGION, "crop")
            pool = explain.region_vector(torch_model, source, REGION, "pool")
            rows += [
                (f"region: search at {len(index)}, exact=None ({how})", "hnswlib",
                 ms(lambda: index.search(crop, 10), n), f"crop vector; pool vector: "
                 f"{ms(lambda: index.search(pool, 10), n):.2f} ms"),
                (f"region: search at {len(index)}, exact (exact=True)", "numpy",
                 ms(lambda: index.search(crop, 10, exact=True), n), ""),
            ]
        finally:
            index.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nExplain and region query, {MODEL}, median of {n} after one warm-up (ms); "
          f"{os.cpu_count()} cores, load (1 min) {load:.2f} -> {os.getloadavg()[0]:.2f}; synthetic {args.rows} built in {build_s:.0f} s\n")
    print("| measurement | backend | ms | notes |\n| --- | --- | ---: | --- |")
    for what, backend, value, note in rows:
        print(f"| {what} | {backend} | {value:.2f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
