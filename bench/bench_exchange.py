"""What import and export of outside embeddings cost: seconds and peak memory.

`import_embeddings` of a Parquet file (path relative to the folder, `embedding` a fixed-size
list of float32, row groups of 8192), of a clip-retrieval output folder (img_emb/img_emb_0.npy
float16 + metadata/metadata_0.parquet with absolute image_path), and `export_embeddings` of the
Parquet import to a new Parquet file. The folder holds N tiny real files (import skips rows
whose file is missing), 1000 a subfolder; vectors are random. Each operation runs in a fresh
child process (this script with --step) that reports its wall time and its peak RSS
(ru_maxrss); a child that only imports explorer.core.exchange and pyarrow gives the baseline.
The inputs are made in a child too, and this parent imports nothing heavy: Linux carries a
process's peak RSS across exec, so a child of a large parent would report the parent's peak.

    python bench/bench_exchange.py [--rows N] [--dim D]

Everything (folder, inputs, EXPLORER_DATA_DIR) lives in a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GROUP = 8192  # rows per Parquet row group of the inputs
PER_DIR = 1000


def make_inputs(scratch: Path, n: int, dim: int) -> Path:
    """The photo folder, scratch/in.parquet and the clip-retrieval folder scratch/clip."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder = scratch / "photos"
    rel = [f"d{i // PER_DIR:04d}/img{i:07d}.jpg" for i in range(n)]
    for i, path in enumerate(rel):
        if i % PER_DIR == 0:
            (folder / path).parent.mkdir(parents=True)
        (folder / path).write_bytes(b"\xff\xd8\xff\xe0" + i.to_bytes(4, "little"))
    rng = np.random.default_rng(0)
    schema = pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), dim))])
    with pq.ParquetWriter(scratch / "in.parquet", schema) as writer:
        for start in range(0, n, GROUP):
            block = rng.standard_normal((len(rel[start:start + GROUP]), dim), np.float32)
            writer.write_table(pa.table([pa.array(rel[start:start + GROUP]),
                                         pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), dim)],
                                        schema=schema), row_group_size=GROUP)
    clip = scratch / "clip"
    (clip / "img_emb").mkdir(parents=True)
    (clip / "metadata").mkdir()
    npy = np.lib.format.open_memmap(clip / "img_emb" / "img_emb_0.npy", "w+", np.float16, (n, dim))
    for start in range(0, n, GROUP):
        npy[start:start + GROUP] = rng.standard_normal((len(npy[start:start + GROUP]), dim), np.float32)
    npy.flush()
    del npy
    base = folder.resolve()
    pq.write_table(pa.table({"image_path": [str(base / p) for p in rel]}),
                   clip / "metadata" / "metadata_0.parquet", row_group_size=GROUP)
    return folder


def step(name: str, scratch: Path, n: int, dim: int) -> dict:
    """One operation, in this (child) process; its seconds, peak RSS and what it made."""
    import pyarrow.parquet  # noqa: F401 (part of the baseline)

    from explorer.core import exchange
    folder, result = scratch / "photos", {}
    started = time.perf_counter()
    if name == "make":
        make_inputs(scratch, n, dim)
    elif name in ("import", "import-clip"):
        source = scratch / ("in.parquet" if name == "import" else "clip")
        report = exchange.import_embeddings(folder, [source], f"bench-{name}")
        result = {"imported": report.imported, "missing": len(report.missing)}
    elif name == "export":
        result = {"imported": exchange.export_embeddings(folder, scratch / "out.parquet", "bench-import"),
                  "out_mb": (scratch / "out.parquet").stat().st_size / 1e6}
    seconds = time.perf_counter() - started
    status = Path("/proc/self/status")  # VmHWM (Linux), to cross-check ru_maxrss on stderr
    hwm = [int(line.split()[1]) / 1024 for line in status.read_text().splitlines()
           if line.startswith("VmHWM")] if status.exists() else []
    return result | {"seconds": seconds, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                     "vmhwm_mb": hwm[0] if hwm else None}


def run_child(name: str, scratch: Path, n: int, dim: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--step", name, "--scratch", str(scratch),
                           "--rows", str(n), "--dim", str(dim)],
                          check=True, capture_output=True, text=True, env=os.environ.copy())
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--step", choices=("make", "baseline", "import", "import-clip", "export"), help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child
        print(json.dumps(step(args.step, args.scratch, args.rows, args.dim)))
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    os.environ["EXPLORER_DATA_DIR"] = str(scratch / "data")
    n, dim = args.rows, args.dim
    try:
        made = run_child("make", scratch, n, dim)["seconds"]
        print(f"  inputs made in {made:.1f} s (in.parquet "
              f"{(scratch / 'in.parquet').stat().st_size / 1e6:.0f} MB)", file=sys.stderr, flush=True)
        results = {}
        for name in ("baseline", "import", "import-clip", "export"):
            before = os.getloadavg()[0]
            results[name] = run_child(name, scratch, n, dim) | {"load": (before, os.getloadavg()[0])}
            print(f"  {name}: {results[name]}", file=sys.stderr, flush=True)
            if name.startswith("import") and results[name]["imported"] != n:
                raise SystemExit(f"{name} imported {results[name]['imported']} of {n} rows")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = results["baseline"]["maxrss_mb"]
    print(f"\nImport / export of {n} x {dim} vectors, each in a fresh process; {os.cpu_count()} cores, "
          f"load average (1 min) before -> after each; baseline (imports only) peak RSS {base:.0f} MB; "
          f"vectors as float32 {n * dim * 4 / 1e6:.0f} MB\n")
    print("| operation | rows | dim | seconds | rows/s | peak RSS MB | above baseline MB | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    labels = {"import": "import Parquet", "import-clip": "import clip-retrieval (npy f16)",
              "export": "export Parquet (out {:.0f} MB)"}
    for name in ("import", "import-clip", "export"):
        r = results[name]
        print(f"| {labels[name].format(r.get('out_mb', 0))} | {n} | {dim} | {r['seconds']:.2f} | "
              f"{n / r['seconds']:,.0f} | {r['maxrss_mb']:.0f} | {r['maxrss_mb'] - base:.0f} | "
              f"{r['load'][0]:.2f} -> {r['load'][1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
