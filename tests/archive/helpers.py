"""A small simulated world written to JSONL, and an archive of it, built once per session."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Item
from watchdog.archive.documents import keyer
from watchdog.archive.layout import EVENTS, FORMAT_KEY
from watchdog.archive.segment import encode_segment
from watchdog.archive.store import ACCESS_KEY_ENV, SECRET_KEY_ENV, Store
from watchdog.cli import main
from watchdog.simulate import SimConfig, build_world, write_world


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(build_world(SimConfig(accounts=100, days=3)), out)
    rc = main(["replay", "--events", str(out / "events.jsonl"), "--directory",
               str(out / "directory.jsonl"), "--subjects", str(out / "subjects.jsonl"),
               "--policy", str(out / "policy.yaml"), "--out", str(out / "alerts.jsonl")])
    assert rc == 0
    return out


def write_archive(world: Path, out: Path, *extra: str) -> int:
    return main(["archive", "write", "--events", str(world / "events.jsonl"),
                 "--directory", str(world / "directory.jsonl"),
                 "--subjects", str(world / "subjects.jsonl"),
                 "--alerts", str(world / "alerts.jsonl"), "--out", str(out), *extra])


def s3_keys_in_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The S3 keys in a credentials directory (as systemd LoadCredential= or a Kubernetes
    Secret volume gives them), none in the environment: as the daemon and commands take them."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "archive-s3-access-key-id").write_text("test")
    (creds / "archive-s3-secret-access-key").write_text("test")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.delenv(ACCESS_KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)


def add_segment(store: Store, docs: list[bytes], fmt: bytes | None, *,
                subject_ids: bool = True) -> str:
    """A recorded events segment written by hand, saying format ``fmt`` (None: no key, as
    before the key existed), with or without the ``subject_ids`` column."""
    parsed = [orjson.loads(raw) for raw in docs]
    ts = pa.array([d["@timestamp"] for d in parsed]).cast(pa.timestamp("us", tz="UTC"))
    cols = {"id": pa.array([d["event"]["id"] for d in parsed], pa.string()), "ts": ts}
    if subject_ids:
        cols["subject_ids"] = pa.array([d["data"]["subject_ids"] for d in parsed],
                                       pa.list_(pa.string()))
    cols["raw"] = pa.array([r.decode() for r in docs], pa.string())
    data = encode_segment(pa.table(cols, metadata=None if fmt is None else {FORMAT_KEY: fmt}))
    first, last = min(ts.to_pylist()), max(ts.to_pylist())
    day = first.strftime("%Y-%m-%d")
    path = f"events/day={day}/hand-000000000001-0000.parquet"
    store.write_bytes(path, data)
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    seg = mf.Segment(path, EVENTS, day, len(docs), data.size, hashlib.sha256(data).hexdigest(),
                     first.strftime(stamp), last.strftime(stamp))
    mf.ManifestWriter(store, "hand").append("segments", segments=[seg.as_dict()])
    return path


def archive_items(path: Path, dataset: str = EVENTS) -> list[Item]:
    """A JSONL file's documents as the writer takes them: (id, event time, raw, subject ids),
    in the file's order."""
    key = keyer(dataset)
    out = []
    for raw in path.read_bytes().splitlines():
        k = key(raw)
        assert isinstance(k, tuple)
        out.append((k[0], k[1], raw, k[2]))
    return out
