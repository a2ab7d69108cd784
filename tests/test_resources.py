"""The bundled sample collection and the resource lookup."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from explorer.resources import resource_path, sample_folder

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _label_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def test_sample_folder_exists() -> None:
    root = sample_folder()
    assert root.is_dir()
    assert root == resource_path("sample")
    assert (root / "LICENSE.txt").is_file()


def test_sample_has_labelled_subfolders_of_readable_images() -> None:
    labels = _label_dirs(sample_folder())
    assert len(labels) >= 8, [p.name for p in labels]
    for folder in labels:
        assert folder.name == folder.name.lower() and folder.name.isascii()
        images = _images(folder)
        assert len(images) >= 4, folder
        for path in images:
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:  # verify() leaves the file unusable: decode afresh
                im.load()
                assert min(im.size) >= 32, path


def test_sample_filenames_are_ascii_and_licence_names_every_label() -> None:
    root = sample_folder()
    licence = (root / "LICENSE.txt").read_text(encoding="utf-8")
    for path in root.rglob("*"):
        assert path.relative_to(root).as_posix().isascii(), path
    for folder in _label_dirs(root):
        assert f"{folder.name}/" in licence, folder.name


def test_sample_is_small() -> None:
    total = sum(p.stat().st_size for p in sample_folder().rglob("*") if p.is_file())
    assert total < 5 * 1024 * 1024, total


def test_missing_resource_raises_with_places_looked() -> None:
    with pytest.raises(FileNotFoundError, match="no-such-resource"):
        resource_path("no-such-resource")


def test_resource_path_rejects_escaping_parts() -> None:
    with pytest.raises(ValueError):
        resource_path("..", "pyproject.toml")


def test_meipass_bundle_is_searched_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "resources" / "sample").mkdir(parents=True)
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    assert sample_folder() == tmp_path / "resources" / "sample"


def test_application_icon_has_every_size_and_a_window_uses_it(qtbot) -> None:
    from explorer.gui.main_window import MainWindow, application_icon
    from explorer.resources import icon_path

    for size in (16, 32, 256):
        with Image.open(icon_path(size)) as im:
            assert im.size == (size, size) and im.mode == "RGBA"
            assert im.getpixel((0, 0))[3] == 0  # transparent corner: the tile has margins
    icon = application_icon()
    assert sorted(s.width() for s in icon.availableSizes()) == [16, 24, 32, 48, 64, 128, 256, 512]
    window = MainWindow()
    qtbot.addWidget(window)
    assert not window.windowIcon().isNull()
    assert window.windowIcon().pixmap(48, 48).toImage().pixelColor(24, 24).alpha() == 255
