"""Plain helpers shared by tests (fixtures live in conftest.py)."""

import shutil
from pathlib import Path

from explorer.resources import sample_folder


def copy_sample(dest: Path, labels: list[str] | None = None) -> Path:
    """Copy (some label folders of) the bundled sample photos into `dest`."""
    source = sample_folder()
    dest.mkdir(parents=True, exist_ok=True)
    for label_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        if labels is None or label_dir.name in labels:
            shutil.copytree(label_dir, dest / label_dir.name)
    return dest
