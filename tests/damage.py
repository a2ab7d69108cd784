"""The damage of issue 18's table, done to a real collection as a user's disk or hand does it:
shared by the command-line tests (tests/test_repair.py) and the app's (tests/gui/test_repair_app.py)."""

import random
import shutil
from pathlib import Path

from explorer.core.store import folder_dir

MODEL = "efficientnet-lite0"


def overwrite(path: Path, seed: int = 0) -> None:
    size = path.stat().st_size
    path.write_bytes(random.Random(seed).randbytes(size))


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def overwrite_in_place(path: Path) -> None:
    """Bytes of a vector overwritten, header and size intact: only the contents check sees it."""
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(random.Random(1).randbytes(3000))


def shard(folder: Path) -> Path:
    [one] = (folder_dir(folder) / MODEL).glob("shard-*.npy")
    return one


# row -> (damage, the file it damages, whether search/info refuse until `index` repairs it)
TABLE = {
    "index.sqlite random bytes": (lambda f: overwrite(folder_dir(f) / MODEL / "index.sqlite"), "index.sqlite", True),
    "index.sqlite truncated to 4 KB": (lambda f: truncate(folder_dir(f) / MODEL / "index.sqlite", 4096),
                                       "index.sqlite", True),
    "a vector shard deleted": (lambda f: shard(f).unlink(), "shard-", True),
    "a vector shard truncated": (lambda f: truncate(shard(f), 30_000), "shard-", True),
    "a vector shard random bytes": (lambda f: overwrite(shard(f)), "shard-", True),
    "a vector shard overwritten in place": (lambda f: overwrite_in_place(shard(f)), "shard-", True),
    "hnsw.bin truncated, hnsw.json garbage": (
        lambda f: (truncate(folder_dir(f) / MODEL / "hnsw.bin", 1000),
                   (folder_dir(f) / MODEL / "hnsw.json").write_text("{garbage")), "hnsw", False),
    "folder.json garbage": (lambda f: (folder_dir(f) / "folder.json").write_text("\x00garbage"), "folder.json", False),
    "the model folder deleted": (lambda f: shutil.rmtree(folder_dir(f) / MODEL), MODEL, False),
    "thumbs.sqlite random bytes": (lambda f: overwrite(folder_dir(f) / "thumbs.sqlite"), "thumbs.sqlite", False),
}
