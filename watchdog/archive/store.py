"""Where an archive lives: a local directory or ``s3://bucket/prefix``, as a pyarrow filesystem.

S3 options ride on the URI's query (``?endpoint=http://127.0.0.1:9000&region=eu-west-1``),
never the keys: those come from ``WATCHDOG_ARCHIVE_S3_ACCESS_KEY_ID`` /
``WATCHDOG_ARCHIVE_S3_SECRET_ACCESS_KEY`` or the credentials directory
(``archive-s3-access-key-id``, ``archive-s3-secret-access-key``), like every other secret of
the watchdog; without them, the AWS default chain (instance profile, IRSA web identity) applies.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from watchdog.systemd import credentials_as_env

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

ACCESS_KEY_ENV = "WATCHDOG_ARCHIVE_S3_ACCESS_KEY_ID"
SECRET_KEY_ENV = "WATCHDOG_ARCHIVE_S3_SECRET_ACCESS_KEY"  # noqa: S105 (a variable's name)
SECRETS = (ACCESS_KEY_ENV, SECRET_KEY_ENV)
_S3_OPTIONS = {"endpoint", "region"}
READERS = 16  # objects read at once from S3 (round trips, not CPU: the GIL is released)


class ArchiveLocationError(ValueError):
    """An archive location that cannot be used; ``str()`` is one line."""


@dataclass(frozen=True)
class Store:
    """The base path of the archive (no trailing slash) and, on S3, its filesystem.

    A local directory is read and written with ``os``: a command that only queries it
    (``subject-report``) then never imports pyarrow (~0.4 s of its start when loaded)."""

    base: str
    uri: str
    s3: pafs.FileSystem | None = None

    @property
    def is_local(self) -> bool:
        return self.s3 is None

    @property
    def fs(self) -> pafs.FileSystem:
        """The pyarrow filesystem (for pyarrow's readers and writers)."""
        if self.s3 is not None:
            return self.s3
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem()

    def path(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def rel(self, path: str) -> str:
        """``path`` relative to the archive's base."""
        return path[len(self.base) + 1:] if path.startswith(self.base + "/") else path

    def write_bytes(self, rel: str, data: bytes | pa.Buffer) -> None:
        path = self.path(rel)
        if self.s3 is None:
            os.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            # write then rename: a crash never leaves a half-written file under the final name
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        else:
            with self.s3.open_output_stream(path) as f:  # an S3 PUT is atomic
                f.write(data)

    def read_bytes(self, rel: str) -> bytes:
        if self.s3 is None:
            with open(self.path(rel), "rb") as f:
                return f.read()
        with self.s3.open_input_stream(self.path(rel)) as f:
            data: bytes = f.read()
        return data

    def read_or_none(self, rel: str) -> bytes | None:
        """``rel``'s bytes, or None when there is no such file: one read where ``exists`` then
        ``read_bytes`` cost a round trip more on S3. Any other failure (permissions, the
        network) is raised: it does not mean the file is absent."""
        try:
            return self.read_bytes(rel)
        except FileNotFoundError:
            return None

    def read_many(self, rels: list[str]) -> list[bytes | None]:
        """Each of ``rels`` (None where it cannot be read): on S3 several at a time, as a
        manifest is many small objects and each read waits on a round trip."""
        def one(rel: str) -> bytes | None:
            try:
                return self.read_bytes(rel)
            except OSError:
                return None

        if self.s3 is None or len(rels) < 2:
            return [one(r) for r in rels]
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            return list(pool.map(one, rels))

    def discard(self, rel: str) -> None:
        """Delete ``rel`` if it is there (a re-run after a crash, another writer first)."""
        with contextlib.suppress(FileNotFoundError):
            self.delete(rel)

    def exists(self, rel: str) -> bool:
        if self.s3 is None:
            return os.path.exists(self.path(rel))
        import pyarrow.fs as pafs

        return bool(self.s3.get_file_info(self.path(rel)).type != pafs.FileType.NotFound)

    def listdir(self, rel: str, *, recursive: bool = False) -> list[str]:
        """Files under ``rel`` (relative to the base, sorted); [] when there is none."""
        if self.s3 is None:
            return sorted(self.rel(p) for p in _local_files(self.path(rel), recursive)
                          if not p.endswith(".tmp"))
        import pyarrow.fs as pafs

        sel = pafs.FileSelector(self.path(rel), allow_not_found=True, recursive=recursive)
        infos = self.s3.get_file_info(sel)
        return sorted(self.rel(i.path) for i in infos if i.type == pafs.FileType.File
                      and not i.path.endswith(".tmp"))

    def delete(self, rel: str) -> None:
        if self.s3 is None:
            os.remove(self.path(rel))
        else:
            self.s3.delete_file(self.path(rel))


def _local_files(top: str, recursive: bool) -> list[str]:
    """The paths of the files under the directory ``top`` ([] when there is none)."""
    out: list[str] = []
    try:
        entries = list(os.scandir(top))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for e in entries:
        if e.is_file():
            out.append(e.path)
        elif recursive and e.is_dir():
            out.extend(_local_files(e.path, True))
    return out


def open_store(location: str, env: Mapping[str, str] | None = None, *,
               create: bool = False) -> Store:
    """The store for ``location`` (a directory, or ``s3://bucket/prefix?endpoint=..``)."""
    if not location.startswith("s3://"):
        if "://" in location:
            raise ArchiveLocationError(f"{location}: only a directory or s3://bucket/prefix")
        base = os.path.abspath(location)
        if create:
            os.makedirs(base, exist_ok=True)
        elif not os.path.isdir(base):
            raise ArchiveLocationError(f"{location}: no such archive directory")
        return Store(base, location)
    parts = urlsplit(location)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        raise ArchiveLocationError(f"{location}: no bucket (s3://bucket/prefix)")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - _S3_OPTIONS
    if unknown:
        raise ArchiveLocationError(f"{location}: unknown option {sorted(unknown)[0]!r} "
                                   f"(known: {', '.join(sorted(_S3_OPTIONS))}); keys come from "
                                   f"{ACCESS_KEY_ENV} or the credentials directory")
    environ = os.environ if env is None else env
    secrets = {**credentials_as_env(SECRETS, environ), **environ}
    kwargs: dict[str, object] = {"region": query.get("region", "us-east-1")}
    endpoint = query.get("endpoint")
    if endpoint:
        ep = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        kwargs["endpoint_override"] = ep.netloc
        kwargs["scheme"] = ep.scheme or "https"
    access, secret = secrets.get(ACCESS_KEY_ENV), secrets.get(SECRET_KEY_ENV)
    if bool(access) != bool(secret):
        raise ArchiveLocationError(f"{ACCESS_KEY_ENV} and {SECRET_KEY_ENV}: give both or neither")
    if access:
        kwargs["access_key"], kwargs["secret_key"] = access, secret
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(**kwargs)
    base = f"{bucket}/{prefix}" if prefix else bucket
    return Store(base, location, fs)
