"""Writing lists of images out: CSV / JSON of paths and scores, copies into a folder, groups.

Pure functions over paths and numbers (no Qt), so they are tested directly; the menu actions
that gather what to write live in export_actions.py. Every file is written to a temporary name
and renamed, so a failed export never leaves half a file under the chosen name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

CSV_HEADER = ("rank", "path", "score")


def _score(value: float | None) -> float | None:
    # JSON has no NaN; a missing score (no query) is written as null / an empty cell.
    return None if value is None or not math.isfinite(value) else float(value)


def _pairs(paths: Sequence[str | Path], scores: Sequence[float] | None) -> list[tuple[str, float | None]]:
    if scores is not None and len(scores) != len(paths):
        raise ValueError(f"{len(paths)} paths but {len(scores)} scores")
    values = [None] * len(paths) if scores is None else [_score(float(s)) for s in scores]
    return [(str(Path(p).absolute()), s) for p, s in zip(paths, values)]


def _write_atomic(target: Path, text: str) -> None:
    target = Path(target)
    tmp = target.with_name(target.name + ".part")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, target)


def write_csv(paths: Sequence[str | Path], scores: Sequence[float] | None, target: Path) -> None:
    """rank, absolute path, score (empty when there is no query), one image per line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for rank, (path, score) in enumerate(_pairs(paths, scores), 1):
        writer.writerow((rank, path, "" if score is None else repr(score)))
    _write_atomic(target, out.getvalue())


def write_json(paths: Sequence[str | Path], scores: Sequence[float] | None, target: Path) -> None:
    """{"images": [{"rank": 1, "path": ..., "score": ...}, ...]} in the given order."""
    images = [{"rank": rank, "path": path, "score": score}
              for rank, (path, score) in enumerate(_pairs(paths, scores), 1)]
    _write_atomic(target, json.dumps({"images": images}, indent=2) + "\n")


def write_list(paths: Sequence[str | Path], scores: Sequence[float] | None, target: Path) -> None:
    """CSV or JSON, by the target's suffix (.json means JSON; anything else CSV)."""
    writer = write_json if Path(target).suffix.lower() == ".json" else write_csv
    writer(paths, scores, target)


def read_list(source: Path) -> list[tuple[str, float | None]]:
    """(path, score) pairs back from a file written by write_list (tests, and re-importing)."""
    source = Path(source)
    if source.suffix.lower() == ".json":
        return [(i["path"], i["score"]) for i in json.loads(source.read_text(encoding="utf-8"))["images"]]
    with source.open(newline="", encoding="utf-8") as f:
        return [(row["path"], float(row["score"]) if row["score"] else None) for row in csv.DictReader(f)]


def write_groups_json(groups: Sequence[Sequence[str | Path]], target: Path) -> None:
    """Near-duplicate groups as `explorer duplicates --json` prints them: {"groups": [[PATH, ...]]}."""
    value = {"groups": [[str(Path(p).absolute()) for p in group] for group in groups]}
    _write_atomic(target, json.dumps(value, indent=2) + "\n")


def free_name(folder: Path, name: str, taken: set[str] | None = None) -> Path:
    """`folder/name`, or `stem-2.ext`, `stem-3.ext`, ... when that exists (or is in `taken`)."""
    taken = taken or set()
    candidate = Path(folder) / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while candidate.exists() or candidate.name in taken:
        n += 1
        candidate = Path(folder) / f"{stem}-{n}{suffix}"
    return candidate


def copy_into_folder(paths: Sequence[str | Path], folder: Path) -> list[Path]:
    """Copy (never move) each file into `folder`, created if needed; a name already there gets a
    numeric suffix. Returns the new files, in the given order. Sources are only read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    taken: set[str] = set()
    for source in paths:
        source = Path(source)
        target = free_name(folder, source.name, taken)
        taken.add(target.name)
        shutil.copy2(source, target)
        copied.append(target)
    return copied
