"""`explorer eval` and `explorer duplicates`, run as a user runs them, checked against figures
recomputed independently from `explorer neighbours` output."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from explorer import cli

from helpers import copy_sample


def explorer(*args) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "explorer.cli", *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """21 sample photos (cat, coffee, rocket) plus: an exact copy (a duplicate), a mislabelled
    photo (so the figures are not all 1.0) and an unlabelled one at the root (a distractor)."""
    folder = copy_sample(tmp_path_factory.mktemp("cli-eval") / "photos", ["cat", "coffee", "rocket"])
    shutil.copy(folder / "cat" / "cat-original.jpg", folder / "cat" / "cat-copy.jpg")
    with Image.open(folder / "cat" / "cat-original.jpg") as im:
        im.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(folder / "rocket" / "upside-down-cat.jpg")
    with Image.open(folder / "coffee" / "coffee-original.jpg") as im:
        im.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(folder / "upside-down-coffee.jpg")
    return folder


def reference_figures(folder: Path, records: list[dict], k: int) -> dict:
    """mAP, precision@k and recall@1 per label and overall, from each image's full ranking."""
    def label(path: str) -> str:
        parts = Path(path).relative_to(folder).parts
        return parts[0] if len(parts) > 1 else ""

    sizes: dict[str, int] = {}
    for r in records:
        sizes[label(r["path"])] = sizes.get(label(r["path"]), 0) + 1
    per_label: dict[str, list[tuple[float, float, float]]] = {}
    for r in records:
        mine = label(r["path"])
        if not mine or sizes[mine] < 2:
            continue
        # On equal scores a non-relevant image ranks first (eval's documented tie rule).
        ranking = sorted(r["neighbours"], key=lambda n: (-n["score"], label(n["path"]) == mine))
        relevant = [label(n["path"]) == mine for n in ranking]
        hits, precisions = 0, []
        for rank, is_relevant in enumerate(relevant, start=1):
            if is_relevant:
                hits += 1
                precisions.append(hits / rank)
        per_label.setdefault(mine, []).append(
            (sum(precisions) / len(precisions), sum(relevant[:k]) / k, float(relevant[0])))

    def means(rows):
        return {"mAP": sum(r[0] for r in rows) / len(rows),
                f"precision@{k}": sum(r[1] for r in rows) / len(rows),
                "recall@1": sum(r[2] for r in rows) / len(rows)}

    return {"overall": means([r for rows in per_label.values() for r in rows]),
            "labels": {name: means(rows) for name, rows in per_label.items()}}


def test_eval_figures_match_a_recomputation_from_neighbours(folder, capsys):
    result = explorer("eval", folder, "--json")
    assert "indexing it first" in result.stderr  # like search, it indexes a new folder first
    figures = json.loads(result.stdout)
    lines = explorer("neighbours", folder, "--k", 23, "--json").stdout.strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 24 and all(len(r["neighbours"]) == 23 for r in records)
    expected = reference_figures(folder, records, 10)

    assert sorted(figures["labels"]) == ["cat", "coffee", "rocket"]  # the root image is no label
    for part in ("overall", *(f"labels.{name}" for name in expected["labels"])):
        got, want = figures, expected
        for key in part.split("."):
            got, want = got[key], want[key]
        assert got == pytest.approx(want, abs=1e-6), part
    assert figures["overall"]["mAP"] < 1.0  # the mislabelled cat costs rocket (and itself)
    assert figures["labels"]["rocket"]["recall@1"] == pytest.approx(7 / 8)

    assert cli.main(["eval", str(folder), "--k", "5"]) == 0  # the table, in-process
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["label", "images", "mAP", "precision@5", "recall@1"]
    overall = table[-1].split()
    assert overall[:2] == ["overall", "23"]
    assert float(overall[2]) == pytest.approx(figures["overall"]["mAP"], abs=5e-4)


def test_duplicates_finds_the_planted_copy(folder, capsys):
    copy, original = str(folder / "cat" / "cat-copy.jpg"), str(folder / "cat" / "cat-original.jpg")
    groups = json.loads(explorer("duplicates", folder, "--threshold", "0.9999", "--json").stdout)["groups"]
    assert groups == [[copy, original]]
    # At the default threshold, augmented variants of one photo group too: one paragraph each.
    assert cli.main(["duplicates", str(folder)]) == 0
    paragraphs = [p.splitlines() for p in capsys.readouterr().out.strip().split("\n\n")]
    assert any({copy, original} <= set(p) for p in paragraphs)
    assert all(len(p) >= 2 and p == sorted(p) for p in paragraphs)
