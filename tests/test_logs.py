"""The app's log file (explorer/logs.py): where it is, what reaches it, its rotation, --log-level."""

import logging
import subprocess
import sys

import pytest

from explorer import logs


def test_log_level_option_is_taken_out_of_the_arguments():
    assert logs.take_level_option(["--log-level", "debug", "index", "x"]) == (["index", "x"], "debug")
    assert logs.take_level_option(["open", "--log-level=WARNING"]) == (["open"], "warning")
    assert logs.take_level_option(["search", "q.jpg"]) == (["search", "q.jpg"], None)
    with pytest.raises(SystemExit, match="must be one of debug, info, warning, error"):
        logs.take_level_option(["--log-level", "loud"])


def test_the_log_file_gets_milestones_and_uncaught_errors_and_is_rotated(tmp_path, monkeypatch, restored_logging):
    monkeypatch.setenv("EXPLORER_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(logs, "LOG_BYTES", 4000)
    path = logs.log_to_file("info")
    assert path == tmp_path / "logs" / "explorer.log"
    logging.getLogger("explorer.core.indexer").info("indexing finished: 3 new")
    logging.getLogger("explorer.core.indexer").debug("not at info")
    try:
        raise RuntimeError("a slot that raised")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert len(restored_logging) == 1  # still reported as before
    text = path.read_text()
    assert "INFO    explorer.core.indexer: indexing finished: 3 new" in text and "not at info" not in text
    assert "uncaught exception" in text and 'raise RuntimeError("a slot that raised")' in text
    for i in range(200):
        logging.getLogger("explorer").info("line %d of a long session", i)
    assert path.stat().st_size <= 4000 and (tmp_path / "logs" / "explorer.log.1").exists()
    assert not (tmp_path / "logs" / "explorer.log.4").exists()  # LOG_BACKUPS old files at most


def test_a_command_logs_to_stderr_only_when_asked(tmp_path):
    def index(*options):
        return subprocess.run([sys.executable, "-m", "explorer.cli", *options, "index", str(tmp_path)],
                              capture_output=True, text=True, timeout=300)

    quiet, detailed = index(), index("--log-level", "debug")
    assert quiet.returncode == detailed.returncode == 0, detailed.stderr
    assert " DEBUG " not in quiet.stderr and " DEBUG   explorer." in detailed.stderr
    refused = index("--log-level", "loud")
    assert refused.returncode != 0 and "--log-level must be one of" in refused.stderr
