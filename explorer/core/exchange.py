"""Embeddings made elsewhere in, ours out: Parquet shards (and clip-retrieval's npy + Parquet).

Import reads a path column and a fixed-length vector column, streaming by row group, into a
collection of the folder of its own, named by the user: a representation like any computed one,
except that no model runs for it (an outside image cannot be embedded unless its name is a model
Explorer knows). It is built in a hidden folder and moved into place only when it is whole, so a
failed import leaves the collection as it was. Export writes the same schema: `path` (relative
to the folder), `image_path` (absolute), `vector` (fixed-size list of float32), `x`, `y` (the
map position, null where there is none). pyarrow is the optional extra `explorer[parquet]`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .catalog import FileEntry
from .layout import Layout
from .backbones import list_specs
from .search import SearchIndex
from .store import Collection, Embedded, folder_dir, read_folder_manifest, write_json_atomic

PATH_COLUMNS = ("path", "image_path", "filepath", "file_path", "filename")
VECTOR_COLUMNS = ("vector", "embedding", "embeddings", "emb", "image_embedding")
ROWS_PER_BATCH = 8192  # per read and per shard: an import of any size holds about this many rows
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class EmbeddingsError(ValueError):
    """The embeddings cannot be imported as given; the message names the file (and row)."""


@dataclass
class ImportReport:
    name: str
    folder: Path
    dim: int = 0
    imported: int = 0
    missing: list[str] = field(default_factory=list)  # paths whose file is not in the folder
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"imported {self.imported} vectors of dimension {self.dim} into {self.folder} as "
                f"{self.name!r}; {len(self.missing)} rows skipped (file not in the folder) "
                f"in {self.seconds:.1f} s")


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise EmbeddingsError("reading and writing Parquet needs pyarrow: "
                              "pip install 'explorer[parquet]'") from None
    return pyarrow


# --- import -------------------------------------------------------------------------------


def import_embeddings(folder: Path, sources: list[Path], name: str, path_column: str | None = None,
                      vector_column: str | None = None) -> ImportReport:
    """Import `sources` (Parquet files, folders of them, or a clip-retrieval output folder) as
    the representation `name` of `folder`. Raises EmbeddingsError (nothing changed) for bad input."""
    started = time.perf_counter()
    folder = Path(folder).resolve()
    _check_name(name)
    report = ImportReport(name, folder)
    batches = _batches(_inputs([Path(s) for s in sources]), path_column, vector_column)
    base = folder_dir(folder)
    building = f".import-{name}-{os.getpid()}"
    base_existed, previous_manifest = base.exists(), read_folder_manifest(folder)
    collection: Collection | None = None
    try:
        for where, first_row, paths, vectors in batches:
            if collection is None:
                report.dim = vectors.shape[1]
                collection = Collection(folder, building, report.dim, {"imported": _describe(sources)})
            elif vectors.shape[1] != report.dim:
                raise EmbeddingsError(f"{where}, row {first_row}: vectors of length {vectors.shape[1]}, "
                                      f"not {report.dim} as before")
            _check_values(vectors, where, first_row)
            entries, keep = _entries(folder, paths, report.missing)
            kept = vectors[keep]
            kept /= np.maximum(np.linalg.norm(kept, axis=1, keepdims=True), 1e-12)
            collection.add_batch([Embedded(e, v, 0, 0) for e, v in zip(entries, kept)], [])
            report.imported += len(entries)
        if collection is None:
            raise EmbeddingsError(f"{_describe(sources)} holds no rows")
        collection.db.execute("UPDATE meta SET value = ? WHERE key = 'model'", (name,))
        collection.close()
        collection = None
        _move_into_place(base / building, base / name)
    except BaseException:
        if collection is not None:
            collection.close()
        shutil.rmtree(base / building if base_existed else base, ignore_errors=True)
        if base_existed:  # as it was
            write_json_atomic(base / "folder.json", previous_manifest)
        raise
    # An import does not change which computed representation the app opens the folder with.
    write_json_atomic(base / "folder.json", read_folder_manifest(folder) | {
        "last_model": previous_manifest.get("last_model", name)})
    report.seconds = time.perf_counter() - started
    return report


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise EmbeddingsError(f"{name!r} cannot name a representation: use letters, digits, '.', '_', '-'")
    if name in {spec.name for spec in list_specs()}:
        raise EmbeddingsError(f"{name!r} is a model Explorer computes itself; import under another --name")


def _describe(sources: list[Path]) -> str:
    return ", ".join(str(Path(s)) for s in sources)


def _move_into_place(built: Path, final: Path) -> None:
    """Replace `final` by `built` (a re-import replaces the earlier one only once it is whole)."""
    old = final.with_name(f".replaced-{final.name}-{os.getpid()}")
    if final.exists():
        final.replace(old)
    built.replace(final)
    shutil.rmtree(old, ignore_errors=True)


def _inputs(sources: list[Path]) -> list[tuple[str, Path, Path | None]]:
    """(kind, file, aligned npy or None) per input: 'parquet' files, or clip-retrieval's pairs of
    metadata/metadata_N.parquet and img_emb/img_emb_N.npy."""
    found: list[tuple[str, Path, Path | None]] = []
    for source in sources:
        if source.is_dir() and (source / "img_emb").is_dir() and (source / "metadata").is_dir():
            for npy in sorted((source / "img_emb").glob("img_emb_*.npy"), key=_shard_number):
                meta = source / "metadata" / f"metadata_{_shard_number(npy)}.parquet"
                if not meta.is_file():
                    raise EmbeddingsError(f"{npy} has no {meta.relative_to(source)} beside it")
                found.append(("clip", meta, npy))
        elif source.is_dir():
            found += [("parquet", p, None) for p in sorted(source.rglob("*.parquet"))]
        elif source.is_file():
            found.append(("parquet", source, None))
        else:
            raise EmbeddingsError(f"no such file or folder: {source}")
    if not found:
        raise EmbeddingsError(f"no Parquet files in {_describe(sources)}")
    return found


def _shard_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.stem)
    return int(match.group(1)) if match else 0


def _batches(inputs: list[tuple[str, Path, Path | None]], path_column: str | None,
             vector_column: str | None) -> Iterator[tuple[str, int, list[str], np.ndarray]]:
    """(file, its first row's number, paths, float32 vectors) of at most ROWS_PER_BATCH rows."""
    pa = _pyarrow()
    for kind, file, npy in inputs:
        try:
            # Without pre-buffering: with it, pyarrow 26 keeps every row group read until the end
            # (+634 MB at 100k x 768 instead of about one batch).
            parquet = pa.parquet.ParquetFile(file, pre_buffer=False)
        except (pa.ArrowException, OSError) as err:
            raise EmbeddingsError(f"{file} is not a readable Parquet file ({err})") from None
        names = parquet.schema_arrow.names
        paths_name = _column(file, names, path_column, PATH_COLUMNS, "path")
        if kind == "clip":
            assert npy is not None, "a clip-retrieval input always has its npy"
            vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
            if vectors.ndim != 2 or parquet.metadata.num_rows != len(vectors):
                raise EmbeddingsError(f"{npy} holds {vectors.shape} vectors for the "
                                      f"{parquet.metadata.num_rows} rows of {file}")
            row = 0
            for batch in parquet.iter_batches(ROWS_PER_BATCH, columns=[paths_name]):
                paths = batch.column(0).to_pylist()
                yield str(npy), row, paths, np.asarray(vectors[row:row + len(paths)], np.float32)
                row += len(paths)
            continue
        vectors_name = _column(file, names, vector_column, VECTOR_COLUMNS, "vector")
        row = 0
        for batch in parquet.iter_batches(ROWS_PER_BATCH, columns=[paths_name, vectors_name]):
            yield str(file), row, batch.column(0).to_pylist(), _vector_array(pa, batch.column(1), file, row)
            row += batch.num_rows


def _column(file: Path, names: list[str], asked: str | None, usual: tuple[str, ...], what: str) -> str:
    if asked is not None:
        if asked not in names:
            raise EmbeddingsError(f"{file} has no column {asked!r}; its columns: {', '.join(names)}")
        return asked
    for name in usual:
        if name in names:
            return name
    raise EmbeddingsError(f"{file}: which column holds the {what}? None of {', '.join(usual)}; its "
                          f"columns: {', '.join(names)} (say it with --{what}-column)")


def _vector_array(pa, column, file: Path, first_row: int) -> np.ndarray:
    """A list / fixed-size-list column as an (N, dim) float32 array; a row of another length, or
    a null one, is an error naming it."""
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        raise EmbeddingsError(f"{file}: the vector column holds {column.type}, not lists of numbers")
    if column.null_count:
        bad = first_row + column.is_null().to_numpy(zero_copy_only=False).argmax()
        raise EmbeddingsError(f"{file}, row {bad}: no vector")
    lengths = pa.compute.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        bad = int(np.flatnonzero(lengths != lengths[0])[0])
        raise EmbeddingsError(f"{file}, row {first_row + bad}: a vector of length {lengths[bad]}, "
                              f"not {lengths[0]} as row {first_row}")
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(len(column), int(lengths[0]) if len(lengths) else 0)


def _check_values(vectors: np.ndarray, where: str, first_row: int) -> None:
    if vectors.shape[1] == 0:
        raise EmbeddingsError(f"{where}, row {first_row}: empty vectors")
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise EmbeddingsError(f"{where}, row {first_row + int(np.flatnonzero(~finite)[0])}: "
                              "the vector holds NaN or infinity")


def _entries(folder: Path, paths: list, missing: list[str]) -> tuple[list[FileEntry], np.ndarray]:
    """FileEntries of the rows whose file is in `folder` (relative or absolute paths), and the
    mask of those rows; the others are added to `missing`. os.path, not pathlib: a stat per row
    is the bulk of an import's time."""
    root = str(folder) + os.sep
    entries, keep = [], np.zeros(len(paths), bool)
    for row, given in enumerate(paths):
        full = os.path.normpath(os.path.join(root, str(given))) if given is not None else ""
        if not full.startswith(root):  # outside the folder, perhaps through a link to it
            full = os.path.realpath(full) if given is not None else ""
        try:
            if not full.startswith(root):
                raise FileNotFoundError(full)
            st = os.stat(full)
        except OSError:
            missing.append("(no path)" if given is None else str(given))
            continue
        relative = full[len(root):].replace(os.sep, "/")
        entries.append(FileEntry(relative, st.st_size, st.st_mtime_ns))
        keep[row] = True
    return entries, keep


# --- export -------------------------------------------------------------------------------


def export_embeddings(folder: Path, out: Path, model: str | None = None) -> int:
    """Write the vectors of `folder` under `model` (and the map position) to `out` (Parquet,
    written atomically, by row group). Returns the number of rows."""
    pa = _pyarrow()
    index = SearchIndex.open(folder, model)
    try:
        dim = index.dim
        layout = Layout.load(index.collection.dir)
        xy = np.full((len(index), 2), np.nan, np.float32)
        if layout is not None:
            known, positions = layout.positions_of(index.ids)
            xy[known] = positions
        schema = pa.schema([("path", pa.string()), ("image_path", pa.string()),
                            ("vector", pa.list_(pa.float32(), dim)), ("x", pa.float32()), ("y", pa.float32())],
                           metadata={"explorer": json.dumps({"model": index.collection.model, "dim": dim,
                                                             "folder": str(index.folder)})})
        out = Path(out)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with pa.parquet.ParquetWriter(tmp, schema) as writer:
                for start in range(0, len(index), ROWS_PER_BATCH):
                    rows = slice(start, start + ROWS_PER_BATCH)
                    paths = index.paths[rows]
                    vectors = pa.FixedSizeListArray.from_arrays(pa.array(index.vectors_of(rows).ravel()), dim)
                    x, y = xy[rows, 0], xy[rows, 1]
                    writer.write_table(pa.table([
                        pa.array(paths), pa.array([str(index.folder / p) for p in paths]), vectors,
                        pa.array(x, mask=np.isnan(x)), pa.array(y, mask=np.isnan(y))], schema=schema))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, out)
        return len(index)
    finally:
        index.close()
