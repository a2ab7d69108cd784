"""explorer: the headless command line over explorer.core.

Progress goes to stderr; results (and the one-line summary of `index`) go to stdout, so scripts
can pipe them.
"""

from __future__ import annotations

import argparse
import difflib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .core import backends, catalog, images
from .core.backends import BackendUnavailable
from .core.models import DEFAULT_MODEL, UnknownModel, WeightsUnavailable, get_spec, list_specs
from .core.store import CollectionError, folder_dir, indexed_models
from .core.tasks import CancelToken
from .logs import (DEFAULT_LEVEL, LEVEL_OPTION, LEVELS, log_file, log_to_stderr, take_level_option,
                   warnings_to_stderr)


class UserError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


class TqdmProgress:
    """Adapts core's progress(done, total, message) to a tqdm bar on stderr."""

    def __init__(self, quiet: bool = False):
        self.bar = None
        self.quiet = quiet

    def __call__(self, done: int, total: int, message: str) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if total and (self.bar is None or self.bar.total != total):
            self.close()
            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
        if self.bar is None:
            print(message, file=sys.stderr)
            return
        self.bar.set_description(message.split(" ")[0])
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _folder(path: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"not a folder: {path}")
    return folder.resolve()


def cmd_index(args: argparse.Namespace) -> int:
    report = _run_index(_folder(args.folder), args.model, args)
    print(report.summary())
    return 130 if report.cancelled else 0


def _run_index(folder: Path, model: str, args: argparse.Namespace):
    from .core.indexer import index_folder

    token = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: token.cancel())  # Ctrl+C stops cleanly
    progress = TqdmProgress(quiet=getattr(args, "quiet", False))
    try:
        report = index_folder(folder, model, progress=progress, cancelled=token,
                              batch_size=getattr(args, "batch_size", 32),
                              decode_workers=getattr(args, "workers", None),
                              backend=getattr(args, "backend", backends.AUTO))
        if report.backend:
            progress.close()
            print(f"forward pass: {report.backend}", file=sys.stderr)
        return report
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)


def _open_index(folder: Path, model: str | None, args: argparse.Namespace):
    from .core.query import SearchIndex, default_model_for

    model = model or default_model_for(folder)
    if model not in indexed_models(folder):
        print(f"{folder} is not indexed with {model} yet; indexing it first", file=sys.stderr)
        report = _run_index(folder, model, args)
        print(report.summary(), file=sys.stderr)
        if report.cancelled:
            raise UserError("indexing was cancelled")
    return SearchIndex.open(folder, model)


def _imported(args: argparse.Namespace) -> list[str]:
    """The folder's representations that no registered model computes (explorer import)."""
    folder = Path(getattr(args, "folder", None) or ".").expanduser()
    known = {spec.name for spec in list_specs()}
    return [m for m in indexed_models(folder) if m not in known] if folder.is_dir() else []


def _indexed_vectors(index, queries: list[str]):
    """The stored vectors of query images that the index holds (an imported representation has no
    model to embed any other image with)."""
    import numpy as np

    row_of = {p: r for r, p in enumerate(index.paths)}
    rows = []
    for query in queries:
        try:
            rows.append(row_of[Path(query).expanduser().resolve().relative_to(index.folder).as_posix()])
        except (ValueError, KeyError):
            raise UserError(f"{index.collection.model!r} was imported, and Explorer cannot run its model: "
                            f"a query must be an image of {index.folder} that it holds, not {query}") from None
    return np.stack([index.vectors[r] for r in rows])


def _region_vectors(model, args: argparse.Namespace):
    """The query images' regions (--region), each as a query vector of its own."""
    import numpy as np

    from .core.explain import parse_region, region_vector

    try:
        region = parse_region(args.region)
        return np.stack([region_vector(model, Path(q).expanduser(), region, args.region_method) for q in args.query])
    except ValueError as err:
        raise UserError(str(err)) from None
    except images.ImageError as err:
        raise UserError(f"cannot read query image: {err}") from None


def cmd_search(args: argparse.Namespace) -> int:
    from .core.embed import embed_query_images, mean_query
    from .core.models import load_model

    folder = _folder(args.folder)
    index = _open_index(folder, args.model, args)
    try:
        region = getattr(args, "region", None)  # demo calls this with fewer arguments
        if index.collection.model in _imported(args):
            if region:
                raise UserError(f"--region needs a model Explorer can run; {index.collection.model!r} was imported")
            vectors = _indexed_vectors(index, args.query)
        elif region:
            vectors = _region_vectors(load_model(index.collection.model, backend=args.backend), args)
        else:
            model = load_model(index.collection.model, backend=args.backend)
            try:
                vectors = embed_query_images(model, [str(Path(q).expanduser()) for q in args.query])
            except images.ImageError as err:
                raise UserError(f"cannot read query image: {err}") from None
        hits = index.search(mean_query(vectors), args.k, exact=args.exact or None)
    finally:
        index.close()
    if args.json:
        print(json.dumps({"results": [{"path": str(h.path), "score": h.score} for h in hits]}))
    else:
        for rank, hit in enumerate(hits, 1):
            print(f"{rank:3d}  {hit.score:.4f}  {hit.path}")
    return 0


def cmd_neighbours(args: argparse.Namespace) -> int:
    index = _open_index(_folder(args.folder), args.model, args)
    try:
        for path, hits in index.neighbours(args.k, exact=args.exact or None):
            if args.json:
                neighbours = [{"path": str(h.path), "score": h.score} for h in hits]
                print(json.dumps({"path": str(path), "neighbours": neighbours}))
            else:
                print(f"{path}\t" + "\t".join(f"{h.path}:{h.score:.4f}" for h in hits))
    finally:
        index.close()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .core.analysis import evaluate, labels_of

    if args.k < 1:
        raise UserError("--k must be at least 1")
    index = _open_index(_folder(args.folder), args.model, args)
    token = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: token.cancel())  # O(N^2): may take a while
    progress = TqdmProgress(quiet=args.json)
    try:
        result = evaluate(index.vectors, labels_of(index.paths), k=args.k, progress=progress,
                          cancelled=token)
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)
        index.close()
    if result is None:
        print("explorer: eval cancelled", file=sys.stderr)
        return 130
    if not result.overall.queries:
        raise UserError(f"{index.folder} has no labels to evaluate: eval needs subfolders "
                        "(labels) holding at least two images each")
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    precision = f"precision@{args.k}"
    width = max(len("overall"), *(len(name) for name in result.labels))
    print(f"{'label':{width}s}  {'images':>6s}  {'mAP':>6s}  {precision:>{len(precision)}s}  {'recall@1':>8s}")
    rows = [*result.labels.items(), ("overall", result.overall)]
    for name, s in rows:
        if name == "overall":
            print("-" * (width + len(precision) + 30))
        print(f"{name:{width}s}  {s.queries:6d}  {s.mean_average_precision:6.3f}  "
              f"{s.precision_at_k:{len(precision)}.3f}  {s.recall_at_1:8.3f}")
    if result.singletons:
        print(f"not evaluated (one image): {', '.join(result.singletons)}", file=sys.stderr)
    return 0


def cmd_duplicates(args: argparse.Namespace) -> int:
    from .core.duplicates import duplicate_groups

    index = _open_index(_folder(args.folder), args.model, args)
    try:
        groups = duplicate_groups(index, args.threshold)
    finally:
        index.close()
    if args.json:
        print(json.dumps({"groups": [[str(p) for p in group] for group in groups]}))
        return 0
    print(f"{len(groups)} group(s) of near-duplicates at similarity >= {args.threshold}",
          file=sys.stderr)
    print("\n\n".join("\n".join(str(p) for p in group) for group in groups))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .core.query import default_model_for
    from .core.store import Collection

    folder = _folder(args.folder)
    models = indexed_models(folder)
    if not models:
        raise UserError(f"{folder} has not been indexed yet: run  explorer index {folder}")
    model = args.model or default_model_for(folder)
    collection = Collection.open_existing(folder, model)
    try:
        collection.verify_vectors()  # a damaged shard is an error naming it, not a silent 'images 14'
        meta = collection.meta()
        skipped = collection.skipped()
        info = {
            "folder": str(folder),
            "model": model,
            "weights_sha256": meta.get("weights_sha256"),
            "preprocessing": meta.get("preprocessing"),
            "images": collection.count("ok"),
            "dimension": collection.dim,
            "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
            "stored_at": str(collection.dir),
            "size_on_disk": collection.size_on_disk(),
            "thumbnails_size_on_disk": (collection.dir.parent / "thumbs.sqlite").stat().st_size,
            "other_models": [m for m in models if m != model],
        }
    finally:
        collection.close()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"folder          {info['folder']}")
    print(f"model           {model}")
    print(f"weights sha256  {info['weights_sha256']}")
    print(f"preprocessing   {info['preprocessing']}")
    print(f"images          {info['images']}")
    print(f"dimension       {info['dimension']}")
    print(f"stored at       {info['stored_at']}")
    print(f"size on disk    {_human(info['size_on_disk'])} (+ {_human(info['thumbnails_size_on_disk'])} thumbnails)")
    if info["other_models"]:
        print(f"also indexed    {', '.join(info['other_models'])}")
    print(f"skipped         {len(skipped)}")
    for s in skipped:
        print(f"  {s.path}: {s.reason}")
    return 0


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def cmd_check(args: argparse.Namespace) -> int:
    from .core.check import check_folder, drop_caches

    folder = _folder(args.folder)
    if not indexed_models(folder):
        raise UserError(f"{folder} has not been indexed yet: run  explorer index {folder}")
    damaged = check_folder(folder)
    for damage in damaged:
        print(damage)
    if not damaged:
        print(f"the collection of {folder} is sound ({', '.join(indexed_models(folder))})")
        return 0
    if not args.repair:
        print(f"{len(damaged)} damaged file(s); `explorer check --repair {folder}` (or `explorer index "
              f"{folder}`) repairs them", file=sys.stderr)
        return 1
    drop_caches(damaged)
    for model in indexed_models(folder):
        print(_run_index(folder, model, args).summary())
    left = check_folder(folder)
    for damage in left:
        print(f"still damaged: {damage}")
    return 1 if left else 0


def cmd_import(args: argparse.Namespace) -> int:
    from .core.exchange import EmbeddingsError, import_embeddings

    sources = [Path(s).expanduser() for s in args.embeddings]
    name = args.name or sources[0].stem
    try:
        report = import_embeddings(_folder(args.folder), sources, name, args.path_column, args.vector_column)
    except EmbeddingsError as err:
        raise UserError(f"{err}; nothing was imported") from None
    for path in report.missing[:10]:
        print(f"skipped (not in the folder): {path}", file=sys.stderr)
    if len(report.missing) > 10:
        print(f"... and {len(report.missing) - 10} more", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_export_embeddings(args: argparse.Namespace) -> int:
    from .core.exchange import EmbeddingsError, export_embeddings

    try:
        rows = export_embeddings(_folder(args.folder), Path(args.out).expanduser(), args.model)
    except EmbeddingsError as err:
        raise UserError(str(err)) from None
    print(f"wrote {rows} rows to {args.out}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Which parts of IMAGE make it similar to the query: each feature-map cell's exact share."""
    from .core.analysis import rocchio
    from .core.embed import embed_query_images
    from .core.explain import explain, overlay_png
    from .core.models import load_model

    model = load_model(args.model, backend=args.backend)
    try:
        positives = embed_query_images(model, [Path(q).expanduser() for q in args.query])
        negatives = embed_query_images(model, [Path(n).expanduser() for n in args.negative]) if args.negative else None
        explanation = explain(args.model, Path(args.image).expanduser(), rocchio(positives, negatives),
                              model.backend)
    except images.ImageError as err:
        raise UserError(f"cannot read an image: {err}") from None
    if args.out:
        overlay_png(Path(args.image).expanduser(), explanation, Path(args.out).expanduser())
    if args.json:
        grid = explanation.grid
        print(json.dumps({"similarity": explanation.similarity, "shape": list(grid.shape),
                          "grid": [[float(v) for v in row] for row in grid], "model": args.model,
                          "pooling": explanation.pooling}))
    else:
        print(f"similarity {explanation.similarity:.4f}: the sum of {explanation.grid.size} shares "
              f"({explanation.grid.shape[0]}x{explanation.grid.shape[1]}, {explanation.pooling.upper()} pooling)"
              + (f"; heatmap written to {args.out}" if args.out else ""))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    print(f"{'name':20s} {'dim':>5s}  {'offline':8s} description")
    for spec in list_specs():
        offline = "yes" if spec.is_available_offline() else "download"
        default = "  [default]" if spec.name == DEFAULT_MODEL else ""
        print(f"{spec.name:20s} {spec.dim:5d}  {offline:8s} {spec.description}{default}")
    print(f"\n{'backend':12s} {'version':12s} used by auto")
    order = backends.preference(backends.AUTO)
    for name in backends.BACKENDS:
        version = backends.version(name) if backends.is_installed(name) else None
        rank = f"{order.index(name) + 1}" if name in order else "-"
        hint = "" if version else f"  ({backends.install_hint(name)})"
        print(f"{name:12s} {version or 'not installed':12s} {rank}{hint}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .resources import sample_folder

    print(sample_folder())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Index the bundled sample collection and search it with one of its photos."""
    from .resources import sample_folder

    folder = sample_folder()
    query = folder / "cat" / "cat-original.jpg"
    print(f"Sample collection: {folder}")
    print(f"Query: {query}\n")
    args.folder, args.query, args.k, args.json, args.exact = str(folder), [str(query)], 10, False, False
    return cmd_search(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explorer", description="Index a photo folder with a CNN and search it by example."
    )
    parser.add_argument("--self-test", action="store_true",
                        help="check the installation: index the sample offscreen, query it, exit 0 if all works")
    parser.add_argument(LEVEL_OPTION, choices=LEVELS, default=None,  # taken out of argv by main
                        help=f"detail of the log: the app's log file ({log_file()}), or stderr for a command")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_model(p: argparse.ArgumentParser, default: str | None) -> None:
        p.add_argument("--model", default=default, help="backbone (see `explorer models`)")
        p.add_argument("--backend", default=backends.AUTO, choices=(backends.AUTO, *backends.BACKENDS),
                       help="what runs the forward pass (default auto: the fastest installed); "
                            "every backend makes the same vectors")

    p = sub.add_parser("index", help="build or update the collection of a folder")
    p.add_argument("folder")
    with_model(p, DEFAULT_MODEL)
    p.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=None, help="decode threads (default: cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="the images most similar to one or more example images")
    p.add_argument("folder")
    p.add_argument("--query", action="append", required=True, metavar="IMAGE",
                   help="example image (repeat to average several examples)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--exact", action="store_true", help="exact search instead of HNSW")
    p.add_argument("--region", metavar="X0,Y0,X1,Y1",
                   help="query by this part of each query image (fractions of its width and height)")
    p.add_argument("--region-method", choices=("crop", "pool"), default="crop",
                   help="crop: embed the region as an image (default: better and faster, "
                        "bench/bench_regions.py); pool: pool the model's feature-map cells of it")
    with_model(p, None)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("neighbours", aliases=["neighbors"], help="every image with its nearest neighbours")
    p.add_argument("folder")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--exact", action="store_true", help="exact search instead of HNSW")
    with_model(p, None)
    p.set_defaults(func=cmd_neighbours)

    p = sub.add_parser("eval", help="retrieval quality per label (subfolder): mAP, precision@k, recall@1")
    p.add_argument("folder")
    p.add_argument("--k", type=int, default=10, help="k of precision@k (default 10)")
    p.add_argument("--json", action="store_true")
    with_model(p, None)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("duplicates", help="groups of near-duplicate images")
    p.add_argument("folder")
    p.add_argument("--threshold", type=float, default=0.95, help="cosine similarity (default 0.95)")
    p.add_argument("--json", action="store_true")
    with_model(p, None)
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser("info", help="what is indexed, where, and which files were skipped")
    p.add_argument("folder")
    p.add_argument("--json", action="store_true")
    with_model(p, None)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("import", help="import embeddings made elsewhere (Parquet; clip-retrieval's "
                                      "npy + Parquet) as a representation of a folder")
    p.add_argument("folder")
    p.add_argument("embeddings", nargs="+", help="Parquet files, folders of them, or a clip-retrieval output folder")
    p.add_argument("--name", help="the representation's name (default: the first file's name)")
    p.add_argument("--path-column", help=f"default: the first of {', '.join(('path', 'image_path', 'filepath'))}, ...")
    p.add_argument("--vector-column", help="default: the first of vector, embedding, embeddings, emb, ...")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export-embeddings", help="write a folder's vectors and map positions to Parquet")
    p.add_argument("folder")
    p.add_argument("out", metavar="OUT.parquet")
    p.add_argument("--model", default=None, help="which representation (default: the folder's last)")
    p.set_defaults(func=cmd_export_embeddings)

    p = sub.add_parser("explain", help="why an image is similar to a query: each region's exact share, as a heatmap")
    p.add_argument("image")
    p.add_argument("--query", action="append", required=True, metavar="IMAGE", help="example image (repeatable)")
    p.add_argument("--negative", action="append", default=[], metavar="IMAGE", help="negative example (repeatable)")
    p.add_argument("--json", action="store_true", help="similarity, grid (rows of floats) and its shape")
    p.add_argument("--out", metavar="PNG", help="write the image with the heatmap over it and a colour bar")
    with_model(p, DEFAULT_MODEL)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("check", help="list the damaged files of a folder's collection (and repair them)")
    p.add_argument("folder")
    p.add_argument("--repair", action="store_true", help="repair what is damaged: embed again what was lost")
    p.add_argument("--backend", default=backends.AUTO, choices=(backends.AUTO, *backends.BACKENDS),
                   help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("models", help="available backbones and inference backends")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("demo", help="index the bundled sample collection and search it")
    with_model(p, None)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sample", help="print the path of the bundled sample collection")
    p.set_defaults(func=cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--self-test"]:
        from .selftest import main as self_test

        return self_test()
    from .core.layout_worker import WORKER_FLAG, worker_main  # light: numpy only

    if argv[:1] == [WORKER_FLAG]:  # the frozen app starting its own map process
        return worker_main()
    argv, log_level = take_level_option(argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    first = argv[0] if argv else ""
    if first not in commands and not first.startswith("-"):  # no command, or a folder: the desktop app
        if first not in ("", "open") and not Path(first).exists():
            # A mistyped command must not open a window that a script would wait on.
            close = difflib.get_close_matches(first, sorted(commands), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; the commands: {', '.join(sorted(commands))}"
            print(f"explorer: error: '{first}' is neither a command nor a folder{hint}", file=sys.stderr)
            return 2
        from .app import main as app_main

        return app_main(argv, log_level=log_level or DEFAULT_LEVEL)
    args = parser.parse_args(argv)
    if log_level:
        log_to_stderr(log_level)
    else:
        warnings_to_stderr()
    try:
        if getattr(args, "model", None) and args.model not in _imported(args):
            get_spec(args.model)
        return args.func(args)
    except (UserError, catalog.FolderError, WeightsUnavailable, CollectionError, UnknownModel,
            BackendUnavailable) as err:
        print(f"explorer: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `explorer neighbours ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
