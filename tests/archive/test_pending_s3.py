"""The pending marker on a real S3 protocol server (moto_server on a free 127.0.0.1 port): read
once, an absent one is none, a marker's segments and the marker cleaned."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.helpers import s3_keys_in_credentials
from tests.services.tansu import MotoS3
from watchdog.archive.pending import clean_pending, mark, pending, pending_path
from watchdog.archive.store import open_store

pytestmark = pytest.mark.integration


def test_the_marker_on_s3(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch,
                          tmp_path: Path) -> None:
    s3_keys_in_credentials(monkeypatch, tmp_path)
    store = open_store(f"s3://{moto_s3.create_bucket()}/watchdog?endpoint={moto_s3.endpoint}")
    rel = pending_path("daemon")
    assert store.read_or_none(rel) is None
    assert pending(store, "daemon", 0) is None
    clean_pending(store, "daemon", 0)  # none: nothing to do, nothing raised
    stray = "events/day=2027-01-15/daemon-000000000001-0000.parquet"
    store.write_bytes(stray, b"PAR1")
    mark(store, "daemon", 1, [stray])
    assert store.read_or_none(rel) == b'{"seq":1,"paths":["' + stray.encode() + b'"]}'
    assert pending(store, "daemon", 0) == [stray]
    assert pending(store, "daemon", 1) == []
    clean_pending(store, "daemon", 0)
    assert store.read_or_none(rel) is None
    assert store.read_or_none(stray) is None
    assert store.listdir("", recursive=True) == []
