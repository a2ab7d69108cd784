"""Similarity heatmaps (issue 19): the grid sums to the similarity search reports, and it points
at the part of a composite that the query shows."""

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from explorer.core.analysis import rocchio
from explorer.core.embed import embed_query_images
from explorer.core.explain import explain
from explorer.core.images import load_rgb, model_input
from explorer.core.indexer import index_folder
from explorer.core.backbones import load_model
from explorer.core.search import SearchIndex
from explorer.resources import sample_folder


def test_the_grid_sums_to_the_similarity_that_search_reports(photo_folder, lite0):
    index_folder(photo_folder, lite0)
    index = SearchIndex.open(photo_folder)
    try:
        example, negative = photo_folder / "cat" / "cat-original.jpg", photo_folder / "coffee" / "coffee-original.jpg"
        single = embed_query_images(lite0, [example])[0]
        with_negative = rocchio(embed_query_images(lite0, [example, photo_folder / "cat" / "cat-gray.jpg"]),
                                embed_query_images(lite0, [negative]))
        for query in (single, with_negative):
            scores = {hit.path: hit.score for hit in index.search(query, 28, exact=True)}
            for target in ("cat/cat-flip.jpg", "rocket/rocket-original.jpg", "astronaut/astronaut-crop.jpg"):
                explanation = explain("efficientnet-lite0", photo_folder / target, query)
                assert explanation.grid.shape == (7, 7)
                assert abs(explanation.similarity - scores[photo_folder / target]) < 1e-4, target
    finally:
        index.close()


def test_gem_pooling_decomposes_exactly_too():
    photo = sample_folder() / "rocket" / "rocket-original.jpg"
    pixels = model_input(load_rgb(photo, min_side=224), 224)[None]
    vector = load_model("efficientnet-lite0+gem", backend="torch").runner(pixels)[0].astype(np.float64)
    query = np.random.default_rng(0).standard_normal(vector.shape)
    query /= np.linalg.norm(query)
    explanation = explain("efficientnet-lite0+gem", photo, query, backend="torch")
    assert explanation.pooling == "gem"
    assert abs(explanation.similarity - vector @ query / np.linalg.norm(vector)) < 1e-6


def quadrant_shares(grid: np.ndarray) -> np.ndarray:
    """The grid's total share in each quadrant (top-left, top-right, bottom-left, bottom-right),
    splitting the middle row and column in halves."""
    fine = np.kron(grid, np.ones((2, 2))) / 4
    half = fine.shape[0] // 2
    return np.array([fine[:half, :half].sum(), fine[:half, half:].sum(),
                     fine[half:, :half].sum(), fine[half:, half:].sum()])


def test_the_largest_share_of_a_composite_is_the_quadrant_the_query_shows(lite0, tmp_path):
    """Four photographs of different subjects on one canvas; the query is one of them, whole."""
    labels = sorted(p.name for p in sample_folder().iterdir() if p.is_dir())
    rng = np.random.default_rng(0)
    hits, trials = 0, 16
    for trial in range(trials):
        chosen = rng.choice(labels, 4, replace=False)
        photos = [sample_folder() / label / f"{label}-original.jpg" for label in chosen]
        canvas = Image.new("RGB", (448, 448))
        for quadrant, photo in enumerate(photos):
            canvas.paste(Image.open(photo).convert("RGB").resize((224, 224)), ((quadrant % 2) * 224, (quadrant // 2) * 224))
        composite = tmp_path / f"composite-{trial}.png"
        canvas.save(composite)
        target = trial % 4
        query = embed_query_images(lite0, [photos[target]])[0]
        shares = quadrant_shares(explain("efficientnet-lite0", composite, query).grid)
        hits += int(np.argmax(shares) == target)
    print(f"largest quadrant is the query's in {hits} of {trials} composites (chance: {trials // 4})")
    assert hits >= trials * 0.6


def test_cli_explain_json_and_png(tmp_path):
    sample = sample_folder()
    out = tmp_path / "why.png"
    result = subprocess.run([sys.executable, "-m", "explorer.cli", "explain", str(sample / "cat" / "cat-flip.jpg"),
                             "--query", str(sample / "cat" / "cat-original.jpg"), "--negative",
                             str(sample / "coffee" / "coffee-original.jpg"), "--json", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["shape"] == [7, 7] and len(answer["grid"]) == 7 and answer["pooling"] == "gap"
    assert answer["similarity"] == pytest.approx(float(np.sum(answer["grid"])), abs=1e-5)
    picture = Image.open(out)
    assert picture.width == 400 and picture.height > 266  # the image (400 x 266) and its colour bar below


def test_a_region_query_of_a_composite_ranks_the_regions_subject_first(photo_folder, lite0, tmp_path):
    """The four labels of the photo folder on one canvas; each quadrant as a query, by both
    methods (crop, the default, and pooling the feature-map cells of the region)."""
    from explorer.core.explain import region_vector

    index_folder(photo_folder, lite0)
    labels = ["astronaut", "cat", "coffee", "rocket"]
    canvas = Image.new("RGB", (448, 448))
    for q, label in enumerate(labels):
        photo = Image.open(photo_folder / label / f"{label}-jitter.jpg").convert("RGB").resize((224, 224))
        canvas.paste(photo, ((q % 2) * 224, (q // 2) * 224))
    composite = tmp_path / "composite.png"
    canvas.save(composite)
    quadrants = ["0,0,0.5,0.5", "0.5,0,1,0.5", "0,0.5,0.5,1", "0.5,0.5,1,1"]
    index = SearchIndex.open(photo_folder)
    try:
        for label, region in zip(labels, quadrants):
            box = tuple(map(float, region.split(",")))
            pooled = [h.path.parent.name for h in index.search(region_vector(lite0, composite, box, "pool"), 7)]
            assert pooled[0] == label and pooled.count(label) >= 3, (label, pooled)  # weaker than crop
    finally:
        index.close()
    for label, region in zip(labels, quadrants):
        result = subprocess.run([sys.executable, "-m", "explorer.cli", "search", str(photo_folder), "--query",
                                 str(composite), "--region", region, "--k", "7", "--json"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        top = [Path(r["path"]).parent.name for r in json.loads(result.stdout)["results"]]
        assert top == [label] * 7, (label, top)
    bad = subprocess.run([sys.executable, "-m", "explorer.cli", "search", str(photo_folder), "--query",
                          str(composite), "--region", "0.5,0,0.2,1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "0 <= x0 < x1 <= 1" in bad.stderr and "Traceback" not in bad.stderr
