"""Scratch experiment (not part of the bench): the embedding pipeline's throughput with different
splits of the cores between torch threads and decode threads, and a variant of embed_batches.

    python bench/scratch_pipeline.py KIND N TORCH_THREADS DECODE_WORKERS [VARIANT]

KIND is big or small (the cached pools of bench_core.py); VARIANT is "embed_batches" (the real
one, default) or "procs" (decode in processes, copied from embed_batches with the pool swapped).
Prints one JSON line. Run one configuration per process: torch's thread pool is set once.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench_core import BATCH, MODEL, image_pool, machine_busy_s
from explorer.core.embed import embed_batches
from explorer.core.images import decode_for_index


def procs_pipeline(model, paths: list[Path], workers: int):
    """embed_batches' loop with a process pool: decoding no longer shares the GIL or the
    process's scheduler slots with torch's OpenMP team."""
    pending: deque = deque()
    source = iter(paths)
    with ProcessPoolExecutor(workers) as pool:
        def refill() -> None:
            while len(pending) < 3 * BATCH and (p := next(source, None)) is not None:
                pending.append(pool.submit(decode_for_index, p, model.input_size, 256))
        refill()
        while pending:
            decoded = []
            while pending and len(decoded) < BATCH:
                decoded.append(pending.popleft().result())
                refill()
            yield model.embed(np.stack([d.pixels for d in decoded]))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    kind, n, threads, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    variant = sys.argv[5] if len(sys.argv) > 5 else "embed_batches"
    import torch

    from explorer.core.models import load_model

    model = load_model(MODEL)
    torch.set_num_threads(threads)
    size = (4000, 3000) if kind == "big" else (300, 225)
    paths = image_pool(kind, n, *size)
    model.embed(np.zeros((BATCH, 224, 224, 3), np.uint8))  # warm-up, as in a long run
    wall, cpu, busy = time.perf_counter(), time.process_time() - children_cpu(), machine_busy_s()
    if variant == "procs":
        count = sum(len(v) for v in procs_pipeline(model, paths, workers))
    else:
        count = sum(len(b.vectors) for b in embed_batches(model, paths, lambda p: p, BATCH,
                                                          decode_workers=workers))
    # Decode processes' CPU counts too (reaped when the pool closed at the end of the loop).
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu + children_cpu()
    others = (machine_busy_s() - busy - cpu) / wall  # cores other processes used meanwhile
    print(json.dumps({"kind": kind, "n": count, "torch": threads, "decode": workers,
                      "variant": variant, "omp_wait": os.environ.get("OMP_WAIT_POLICY", ""),
                      "img_s": round(count / wall, 2), "cpu_ms_img": round(cpu / count * 1e3, 1),
                      "util": round(cpu / wall / (os.cpu_count() or 1), 2), "others": round(others, 2)}))


if __name__ == "__main__":
    main()
