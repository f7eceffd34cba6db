"""``snnkit data``: the neuromorphic datasets' files and the frame cache.

- ``list`` — each dataset, its classes and sensor, and whether its files are under the root;
- ``info NAME`` — files, URLs, published checksums, splits, classes, licence, citation;
- ``fetch NAME`` — download the missing files (verified); files present are left as they are;
- ``verify NAME`` — hash the files present and compare with the published checksums. Exit 0
  when every file is present (or unpacked) and matches (or has no published checksum), 1
  when one is missing or differs — a failed check, like a failed run;
- ``cache list`` / ``cache clear [NAME]`` — the frame cache (``$SNNKIT_CACHE``).

Bad input (an unknown dataset, a failed download) is one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from snnkit.cli.errors import reported_errors

data_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Neuromorphic datasets: list, info, fetch, verify; the frame cache.",
)
cache_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="The on-disk cache of frames computed from events.",
)
data_app.add_typer(cache_app, name="cache")

NameArg = Annotated[
    str, typer.Argument(help="Dataset: nmnist, dvs_gesture, cifar10_dvs, shd or ssc.")
]
RootOpt = Annotated[
    Path | None,
    typer.Option("--root", help="Data root (default: $SNNKIT_DATA, else ~/.cache/snnkit/data)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _folder(name: str, root: Path | None) -> tuple[Any, Path]:
    from snnkit.data.images import resolve_root
    from snnkit.data.neuromorphic.sources import dataset_info

    info = dataset_info(name)
    return info, resolve_root(None if root is None else str(root)) / info.folder


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _on_disk(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@data_app.command("list")
def list_datasets(root: RootOpt = None, as_json: JsonOpt = False) -> None:
    """List the neuromorphic datasets and whether their files are under the data root."""
    from snnkit.data.neuromorphic.sources import DATASETS

    rows = []
    for name in DATASETS:
        info, folder = _folder(name, root)
        have = [f.name for f in info.files if f.present(folder)]
        state = (
            "yes"
            if len(have) == len(info.files)
            else "partly"
            if have or _on_disk(folder)
            else "no"
        )
        rows.append(
            {
                "name": name,
                "title": info.title,
                "classes": info.num_classes,
                "sensor": "×".join(map(str, info.sensor)),
                "folder": str(folder),
                "present": state,
                "on_disk": _size(_on_disk(folder)),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(
            f"{r['name']:<12} {r['title']:<30} {r['classes']:>3} classes  "
            f"{r['sensor']:<8} present: {r['present']:<6} {r['on_disk']:>9}  "
            f"{r['folder']}"
        )


@data_app.command()
def info(name: NameArg, root: RootOpt = None, as_json: JsonOpt = False) -> None:
    """Files, URLs, checksums, splits, classes, sensor, licence and citation of a dataset."""
    with reported_errors():
        meta, folder = _folder(name, root)
    files = [
        {
            "name": f.name,
            "split": f.split,
            "urls": list(f.urls),
            "checksum": f.checksum,
            "checksum_list": f.checksum_list,
            "present": f.present(folder),
        }
        for f in meta.files
    ]
    record = {
        "name": meta.name,
        "title": meta.title,
        "folder": str(folder),
        "files": files,
        "splits": meta.splits,
        "classes": list(meta.classes),
        "sensor": list(meta.sensor),
        "homepage": meta.homepage,
        "licence": meta.licence,
        "citation": meta.citation,
        "checksum_source": meta.checksum_source,
        "manual": meta.manual,
        "layouts": list(meta.layouts),
    }
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    typer.echo(f"{meta.title} ({meta.name})\n")
    typer.echo(f"folder:    {folder}")
    typer.echo(f"layouts:   {'; '.join(meta.layouts)}")
    typer.echo(f"sensor:    {'×'.join(map(str, meta.sensor))}")
    typer.echo(f"classes:   {meta.num_classes}: {', '.join(meta.classes)}")
    typer.echo(f"splits:    {meta.splits}")
    typer.echo(f"homepage:  {meta.homepage}")
    typer.echo(f"licence:   {meta.licence}")
    typer.echo(f"citation:  {meta.citation}")
    typer.echo(f"checksums: {meta.checksum_source}")
    if meta.manual:
        typer.echo(f"download:  by hand — {meta.manual} {folder}")
    typer.echo("files:")
    for f in files:
        checksum = f["checksum"] or (
            f"none published; read from {f['checksum_list']} at fetch time"
            if f["checksum_list"]
            else "none published"
        )
        where = ", ".join(f["urls"]) or "by hand (see download above)"
        mark = "present" if f["present"] else "missing"
        typer.echo(
            f"  {f['name']} [{f['split']}, {mark}]\n    checksum: {checksum}\n    from: {where}"
        )


@data_app.command()
def fetch(name: NameArg, root: RootOpt = None) -> None:
    """Download a dataset's missing files into the data root, verified; keep those present."""
    from snnkit.data.neuromorphic.files import obtain

    with reported_errors():
        meta, folder = _folder(name, root)
        missing = [f for f in meta.files if not f.present(folder)]
        for f in meta.files:
            if f not in missing:
                typer.echo(f"have {folder / f.name}")
        for f in missing:
            obtain(meta, folder, [f], download=True)
            typer.echo(f"fetched {folder / f.name}")


@data_app.command()
def verify(name: NameArg, root: RootOpt = None) -> None:
    """Hash the files and compare them with the published checksums (exit 1: one differs).

    Exit 0 when every file is present (or unpacked) and matches or has no published checksum;
    1 when one is missing or differs.
    """
    from snnkit.data.download import file_digest, parse_checksum
    from snnkit.data.neuromorphic.files import published_checksum

    with reported_errors():
        meta, folder = _folder(name, root)
    failed = False
    for f in meta.files:
        path = folder / f.name
        if not path.is_file() and f.present(folder):
            typer.echo(f"unchecked {path} (only its unpacked form is present)")
            continue
        if not path.is_file():
            typer.echo(f"missing   {path}")
            failed = True
            continue
        checksum = published_checksum(f)
        if checksum is None:
            typer.echo(f"unchecked {path} (no published checksum available)")
            continue
        algo, want = parse_checksum(checksum)
        got = file_digest(path, algo)
        if got == want:
            typer.echo(f"ok        {path}")
        else:
            typer.echo(f"MISMATCH  {path}: {algo} {got}, published {want}")
            failed = True
    if failed:
        raise typer.Exit(1)


@cache_app.command("list")
def cache_list(as_json: JsonOpt = False) -> None:
    """List the frame-cache entries: dataset, key, samples, size and the frame parameters."""
    from snnkit.data.frame_cache import cache_dir, list_entries

    rows = list_entries()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    typer.echo(f"cache: {cache_dir()}")
    for r in rows:
        spec = r["spec"]
        typer.echo(
            f"{r['dataset']:<12} {r['key']}  {spec.get('split', '?'):<5} "
            f"{r['samples']:>6} samples  frames={spec.get('frames')} "
            f"split_by={spec.get('split_by')}  {_size(r['bytes'])}"
        )


@cache_app.command("clear")
def cache_clear(
    name: Annotated[
        str | None, typer.Argument(help="Only this dataset's entries (default: all).")
    ] = None,
) -> None:
    """Remove frame-cache entries (and unfinished builds)."""
    from snnkit.data.frame_cache import cache_dir, clear

    removed = clear(name)
    typer.echo(
        f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {cache_dir()}", err=False
    )
    sys.stdout.flush()
