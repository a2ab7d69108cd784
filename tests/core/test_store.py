"""The on-disk collection's atomic writes, and the vectors a lost index.sqlite leaves behind."""

import json
import random
import shutil
import threading

from explorer.core.indexer import index_folder
from explorer.core.search import SearchIndex
from explorer.core.store import folder_dir, write_json_atomic

from helpers import copy_sample


def test_concurrent_atomic_writes_of_one_file_never_collide(tmp_path):
    """Two opens of one folder at once both rewrite its manifest: each write must land whole."""
    path = tmp_path / "folder.json"
    errors = []

    def write(n):
        try:
            for i in range(200):
                write_json_atomic(path, {"writer": n, "i": i})
        except OSError as err:  # with one shared temp name: FileNotFoundError on os.replace
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(path.read_text())["i"] == 199
    assert [p.name for p in tmp_path.iterdir()] == ["folder.json"]  # no temp file left behind


def test_a_lost_index_reuses_every_intact_shard_and_embeds_only_what_the_damaged_one_held(
        photo_folder, lite0, tmp_path):
    index_folder(photo_folder, lite0)  # 28 images: one shard
    extra = copy_sample(tmp_path / "more", ["clock"])
    for name in ("clock-original.jpg", "clock-flip.jpg"):
        shutil.copy(extra / "clock" / name, photo_folder / name)
    index_folder(photo_folder, lite0)  # the big shard is kept, a second one holds the two
    model_dir = folder_dir(photo_folder) / lite0.spec.name
    shards = sorted(model_dir.glob("shard-*.npy"))
    assert len(shards) == 2
    before = SearchIndex.open(photo_folder)
    expected = {path: before.vectors[row].copy() for row, path in enumerate(before.paths)}
    before.close()
    (model_dir / "index.sqlite").write_bytes(random.Random(0).randbytes(8192))
    with open(shards[1], "r+b") as f:  # the small shard's vectors overwritten in place
        f.seek(200)
        f.write(random.Random(1).randbytes(4000))

    report = index_folder(photo_folder, lite0)
    assert (report.new, report.unchanged) == (2, 28)  # only the damaged shard's images embedded again
    assert any("reusing the vectors of 28 images" in line for line in report.repaired)
    after = SearchIndex.open(photo_folder)
    assert sorted(after.paths) == sorted(expected)
    for row, path in enumerate(after.paths):
        assert abs(float(after.vectors[row] @ expected[path]) - 1) < 1e-4, path
    after.close()
