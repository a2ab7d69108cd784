"""The on-disk collection's atomic writes."""

import json
import threading

from explorer.core.store import write_json_atomic


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
