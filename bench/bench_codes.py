"""Compact search codes (core/codes.py) against the full vectors: retrieval agreement on the
label folders of a real set, and the cost of the similarity of all N images at 100k and 1M.

    python bench/bench_codes.py [FOLDER] [--dims 64,128,256] [--rerank 100]

FOLDER: photos in label subfolders (default: the bundled sample's 13 photos x 7 variants, each
also flipped, cropped, turned grey and rotated a little: 455 real images). It is indexed into a
data directory under bench/out/ (never the user's). Every image is a query against all others:

- top-100 overlap: the share of the full vectors' 100 nearest that the codes also rank top 100;
- mAP: over the whole ranking, of label-mates (the query's own folder), for the full vectors, the
  codes alone, and the codes with their top `--rerank` re-ranked by the full vectors;
- |error|: mean and max absolute difference of the codes' cosines from the true ones.

Then timings: all-N similarities from the full float32 vectors (numpy) and from the codes
(float16, torch's CPU matmul), median of 5 queries.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
OUT = Path(__file__).resolve().parent / "out"
os.environ.setdefault("EXPLORER_DATA_DIR", str(OUT / "data"))

from explorer.core.analysis import average_precision  # noqa: E402
from explorer.core.codes import Codes  # noqa: E402
from explorer.core.indexer import index_folder  # noqa: E402
from explorer.core.search import SearchIndex  # noqa: E402
from explorer.resources import sample_folder  # noqa: E402


def sample_variants() -> Path:
    """The sample's photos and four edits of each, in the sample's label folders."""
    folder = OUT / "sample-variants-v1"
    if folder.is_dir():
        return folder
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in sorted(sample_folder().glob("*/*.jpg")):
        (tmp / path.parent.name).mkdir(parents=True, exist_ok=True)
        image = Image.open(path).convert("RGB")
        w, h = image.size
        edits = {
            "": image,
            "-mirror": ImageOps.mirror(image),
            "-crop": image.crop((w // 8, h // 8, w - w // 8, h - h // 8)),
            "-grey": ImageOps.grayscale(image).convert("RGB"),
            "-tilt": image.rotate(12, expand=True, fillcolor=(255, 255, 255)),
        }
        for suffix, edit in edits.items():
            edit.save(tmp / path.parent.name / f"{path.stem}{suffix}.jpg", quality=90)
    tmp.rename(folder)
    return folder


def agreement(vectors: np.ndarray, labels: np.ndarray, codes: Codes, rerank: int) -> dict[str, float]:
    overlap, ap_full, ap_codes, ap_rerank, errors = [], [], [], [], []
    for row in range(len(vectors)):
        exact = vectors @ vectors[row]
        approx = codes.similarities(vectors[row])
        relevant = labels == labels[row]
        if relevant.sum() < 2:
            continue
        exclude = np.zeros(len(vectors), bool)
        exclude[row] = True  # the query itself
        mask = ~exclude
        top_exact = set(np.argsort(-np.where(mask, exact, -np.inf))[:100])
        top_codes = np.argsort(-np.where(mask, approx, -np.inf))
        overlap.append(len(top_exact & set(top_codes[:100])) / min(100, len(vectors) - 1))
        reranked = approx.copy()
        head = top_codes[:rerank]
        reranked[head] = exact[head] + 10.0  # the re-ranked head first, in its exact order
        ap_full.append(average_precision(exact, relevant, exclude))
        ap_codes.append(average_precision(approx, relevant, exclude))
        ap_rerank.append(average_precision(reranked, relevant, exclude))
        errors.append(np.abs(approx - exact))
    err = np.concatenate(errors)
    return {"overlap": float(np.mean(overlap)), "map_full": float(np.mean(ap_full)),
            "map_codes": float(np.mean(ap_codes)), "map_rerank": float(np.mean(ap_rerank)),
            "err_mean": float(err.mean()), "err_max": float(err.max())}


def median_ms(run, repeats: int = 5) -> float:
    run()  # warm-up (torch's import and kernel choice on the first call)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def timings(sizes: list[int], dims: int) -> None:
    rng = np.random.default_rng(0)
    print(f"\n| N | full float32 x 1280 (numpy) ms | codes float16 x {dims} (torch) ms | codes MB |")
    print("| ---: | ---: | ---: | ---: |")
    for n in sizes:
        query = rng.standard_normal(1280).astype(np.float32)
        query /= np.linalg.norm(query)
        full = "-"
        if n <= 200_000:  # 1M x 1280 float32 alone would be 5 GB
            vectors = rng.standard_normal((n, 1280), dtype=np.float32)
            full = f"{median_ms(lambda: vectors @ query):.1f}"
            del vectors
        axes = np.linalg.qr(rng.standard_normal((1280, dims)))[0].T.astype(np.float32)
        from explorer.core.codes import Codebook

        codes = Codes(Codebook(np.zeros(1280, np.float32), axes, n), np.arange(n),
                      (0.05 * rng.standard_normal((n, dims), dtype=np.float32)).astype(np.float16))
        print(f"| {n:,} | {full} | {median_ms(lambda: codes.similarities(query)):.1f} | "
              f"{codes.codes.nbytes / 1e6:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", help="photos in label subfolders (default: the sample's variants)")
    parser.add_argument("--dims", default="64,128,256")
    parser.add_argument("--rerank", type=int, default=100)
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()

    folder = Path(args.folder).resolve() if args.folder else sample_variants()
    report = index_folder(folder)
    print(report.summary(), file=sys.stderr)
    index = SearchIndex.open(folder)
    vectors, (_, labels) = index.vectors, index.labels()
    index.close()
    print(f"{folder.name}: {len(vectors)} images, {len(set(labels.tolist()))} labels, d={vectors.shape[1]}; "
          f"every image a query against all others\n")
    print(f"| dims | top-100 overlap | mAP full | mAP codes | mAP codes + re-rank {args.rerank} "
          "| mean abs error | max abs error | fit + encode s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for dims in (int(d) for d in args.dims.split(",")):
        started = time.perf_counter()
        codes = Codes.build(vectors, np.arange(len(vectors)), dims)
        fit_s = time.perf_counter() - started
        a = agreement(vectors, labels, codes, args.rerank)
        print(f"| {codes.codebook.dims} | {a['overlap']:.3f} | {a['map_full']:.4f} | {a['map_codes']:.4f} "
              f"| {a['map_rerank']:.4f} | {a['err_mean']:.4f} | {a['err_max']:.4f} | {fit_s:.2f} |", flush=True)
    timings([int(n) for n in args.sizes.split(",")], 256)


if __name__ == "__main__":
    main()
