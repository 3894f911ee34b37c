"""What an HTTP sink reads of an answer: the status is the answer, its body is read only in
part. A receiver answering with a large or endless body (a streaming endpoint, a proxy's
error page gone wrong) must neither hold a send until it times out nor fill the memory; the
rest of the body is dropped with the connection.
"""

from __future__ import annotations

import httpx

BODY_BYTES = 64 << 10  # of a success's body read at most (for the connection's reuse)
ERROR_BYTES = 4 << 10  # of an error's body read at most, for its one-line reason
ERROR_CHARS = 200  # of that reason kept


async def drain(resp: httpx.Response, limit: int = BODY_BYTES) -> None:
    """Read at most ``limit`` bytes of ``resp``'s body (opened with ``client.stream``)."""
    read = 0
    async for chunk in resp.aiter_raw():
        read += len(chunk)
        if read > limit:
            break


async def error_line(resp: httpx.Response, limit: int = ERROR_BYTES) -> str:
    """The start of ``resp``'s body as one line: at most ``limit`` bytes read, whitespace
    collapsed, :data:`ERROR_CHARS` kept. Raw bytes: the client asks for no content coding
    (``Accept-Encoding: identity``), so none is expanded here."""
    got = bytearray()
    async for chunk in resp.aiter_raw():
        got += chunk[:limit - len(got)]
        if len(got) >= limit:
            break
    return " ".join(got.decode("utf-8", "replace").split())[:ERROR_CHARS]
