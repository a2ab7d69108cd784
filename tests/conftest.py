"""Test-wide set-up: no display, and never the user's own data directory or settings."""

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Collections are keyed by folder path, so one store for the whole session is enough; it must
# be set before anything reads it (CLI subprocesses inherit it).
os.environ["EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="explorer-test-data-")
os.environ["XDG_CONFIG_HOME"] = os.path.join(os.environ["EXPLORER_DATA_DIR"], "config")

import pytest

from explorer.resources import sample_folder


@pytest.fixture(scope="session")
def lite0():
    """The default model, built once per session (building it costs seconds)."""
    from explorer.core.models import load_model

    return load_model("efficientnet-lite0")


def copy_sample(dest: Path, labels: list[str] | None = None) -> Path:
    """Copy (some label folders of) the bundled sample photos into `dest`."""
    source = sample_folder()
    dest.mkdir(parents=True, exist_ok=True)
    for label_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        if labels is None or label_dir.name in labels:
            shutil.copytree(label_dir, dest / label_dir.name)
    return dest


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """A small folder of real photographs: 4 labels x 7 variants."""
    return copy_sample(tmp_path / "photos", ["cat", "coffee", "rocket", "astronaut"])
