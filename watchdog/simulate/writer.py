"""Writing a world to files: events.jsonl (optionally .gz), directory.jsonl,
subjects.jsonl, accounts.jsonl (the identity provider, contract 1.1), policy.yaml and
truth.jsonl: one line per expected alert, then one per case that must raise nothing (a near
miss, or a violation of a rule the policy leaves off), marked ``"expected": false``."""

from __future__ import annotations

import gzip as gz
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import yaml

from watchdog.simulate.policy import POLICY_HEADER
from watchdog.simulate.world import World

_CHUNK = 8192


def _lines(fh: BinaryIO | gz.GzipFile, docs: Iterable[dict[str, Any]]) -> int:
    n = 0
    buf: list[bytes] = []
    dumps = orjson.dumps
    for doc in docs:
        buf.append(dumps(doc))
        if len(buf) >= _CHUNK:
            fh.write(b"\n".join(buf) + b"\n")
            n += len(buf)
            buf.clear()
    if buf:
        fh.write(b"\n".join(buf) + b"\n")
        n += len(buf)
    return n


def write_world(world: World, out_dir: Path, *, gzip: bool = False,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Path]:
    """Write every document of ``world`` under ``out_dir``; returns name -> path.

    ``gzip`` compresses the events file only (``events.jsonl.gz``, reproducible: no name or
    time in the header), the one that is large."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "events": out_dir / ("events.jsonl.gz" if gzip else "events.jsonl"),
        "directory": out_dir / "directory.jsonl",
        "subjects": out_dir / "subjects.jsonl",
        "accounts": out_dir / "accounts.jsonl",
        "policy": out_dir / "policy.yaml",
        "truth": out_dir / "truth.jsonl",
    }
    with paths["directory"].open("wb") as fh:
        _lines(fh, world.directory)
    with paths["subjects"].open("wb") as fh:
        _lines(fh, world.subjects)
    with paths["accounts"].open("wb") as fh:
        _lines(fh, world.accounts_feed)
    with paths["truth"].open("wb") as fh:
        _lines(fh, [*world.ground_truth, *world.silent])
    paths["policy"].write_text(
        POLICY_HEADER + yaml.safe_dump(world.policy, sort_keys=False, allow_unicode=True,
                                       width=100), encoding="utf-8")
    with paths["events"].open("wb") as raw:
        if gzip:
            with gz.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                             compresslevel=1) as fh:
                _lines(fh, world.events(progress))
        else:
            _lines(raw, world.events(progress))
    return paths
