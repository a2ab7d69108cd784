"""`explorer check`: everything damaged in a folder's collection, found without changing anything
(like `git fsck`). Repairing is indexing (`index_folder` opens the collection with REPAIR), after
`drop_caches` has deleted the damaged caches it would not read."""

from __future__ import annotations

import json
from pathlib import Path

from .ann import AnnIndex
from .codes import CODEBOOK_FILE, CODES_FILE, Codes
from .layout import LAYOUT_FILE, Layout
from .store import REPORT, Collection, CollectionDamaged, Damage, folder_dir, indexed_models

_GRAPH_FILES = ("hnsw.bin", "hnsw.json")
_CODE_FILES = (CODES_FILE, CODEBOOK_FILE)


def check_folder(folder: Path) -> list[Damage]:
    """The damaged files of every model's collection of `folder`; reads every stored vector."""
    base = folder_dir(folder)
    found: list[Damage] = []
    manifest = base / "folder.json"
    try:
        json.loads(manifest.read_text())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as err:
        found.append(Damage(manifest, f"not readable: {err}", "written again"))
    for model in indexed_models(folder):
        try:
            collection = Collection.open_existing(folder, model, REPORT)
        except CollectionDamaged as err:  # without its index.sqlite nothing else can be checked
            found.append(err.damage)
            continue
        try:
            collection.verify_vectors()
            found += collection.damage
            found += _caches(collection)
        finally:
            collection.close()
    return found


def _caches(collection: Collection) -> list[Damage]:
    """The search codes, the graph on them and the map: caches, made again when unreadable (on
    the next search or opening), but a check lists them."""
    found = []
    if collection.count() > 1:
        codes = Codes.load(collection.dir)
        if codes is None or codes.generation != collection.generation:
            found.append(Damage(collection.dir / CODES_FILE, "missing, unreadable or out of date",
                                "the search codes and graph are made again from the vectors"))
        elif AnnIndex.load(collection.dir, codes.codebook.dims, collection.generation, codes.codebook.key) is None:
            found.append(Damage(collection.dir / "hnsw.bin", "unreadable or out of date",
                                "the search graph is built again from the codes"))
    layout = collection.dir / LAYOUT_FILE
    if layout.exists() and Layout.load(collection.dir) is None:
        found.append(Damage(layout, "unreadable", "the map is computed again"))
    return found


def drop_caches(found: list[Damage]) -> None:
    """Delete the damaged search codes, graphs and maps among `found`: indexing (codes and graph)
    and the app (the map) make them again. Indexing checks the graph by its size only, not by reading it."""
    for damage in found:
        if damage.path.name == LAYOUT_FILE:
            damage.path.unlink(missing_ok=True)
        elif damage.path.name in _CODE_FILES:  # the graph on them goes with them
            for name in _CODE_FILES + _GRAPH_FILES:
                (damage.path.parent / name).unlink(missing_ok=True)
        elif damage.path.name in _GRAPH_FILES:
            for name in _GRAPH_FILES:
                (damage.path.parent / name).unlink(missing_ok=True)
