"""Region queries: embed the cropped region, or pool the feature-map cells of it? Measured.

A labelled set made of composites: four photographs of different subjects of the bundled sample
collection (a random variant each: original, colour jitter or small) pasted into the quadrants of
one canvas; the query is one quadrant of it, searched in the sample collection (13 labels x 7
variants); the score is how many of the quadrant subject's 7 images are in the top 10. Also the
whole composite, as today's query without a region, and each method's time per query.

    python bench/bench_regions.py [--trials 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ["EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-regions-")
    from explorer.core.embed import embed_query_images
    from explorer.core.explain import region_vector
    from explorer.core.indexer import index_folder
    from explorer.core.backbones import load_model
    from explorer.core.search import SearchIndex
    from explorer.resources import sample_folder

    folder, model = sample_folder(), load_model("efficientnet-lite0")
    index_folder(folder, model)
    index = SearchIndex.open(folder)
    labels = sorted(p.name for p in folder.iterdir() if p.is_dir())
    quadrants = [(0, 0, .5, .5), (.5, 0, 1, .5), (0, .5, .5, 1), (.5, .5, 1, 1)]
    rng, scratch = np.random.default_rng(args.seed), Path(tempfile.mkdtemp(prefix="composites-"))
    found: dict[str, list[int]] = {"whole image (no region)": [], "crop": [], "pool": []}
    seconds: dict[str, list[float]] = {"whole image (no region)": [], "crop": [], "pool": []}
    region_vector(model, folder / "cat" / "cat-original.jpg", quadrants[0], "pool")  # build torch once
    for trial in range(args.trials):
        chosen = rng.choice(labels, 4, replace=False)
        canvas = Image.new("RGB", (448, 448))
        for q, label in enumerate(chosen):
            variant = rng.choice(["original", "jitter", "small"])
            photo = Image.open(folder / label / f"{label}-{variant}.jpg").convert("RGB").resize((224, 224))
            canvas.paste(photo, ((q % 2) * 224, (q // 2) * 224))
        composite = scratch / f"composite-{trial}.png"
        canvas.save(composite)
        target = trial % 4
        for method in found:
            started = time.perf_counter()
            vector = embed_query_images(model, [composite])[0] if method.startswith("whole") else \
                region_vector(model, composite, quadrants[target], method)
            seconds[method].append(time.perf_counter() - started)
            hits = index.search(vector, 10, exact=True)
            found[method].append(sum(h.path.parent.name == chosen[target] for h in hits))
    index.close()
    print(f"\n{args.trials} composites, seed {args.seed}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}\n")
    print("| query | images of the region's subject in the top 10 (of 7), mean | all 7 found | ms per query |")
    print("| --- | ---: | ---: | ---: |")
    for method, counts in found.items():
        print(f"| {method} | {np.mean(counts):.2f} | {sum(c == 7 for c in counts)} of {len(counts)} | "
              f"{statistics.median(seconds[method]) * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
