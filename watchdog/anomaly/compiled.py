"""How the anomaly stage's per-row kernels are compiled: numba, ahead of the first event, with
numba's on-disk cache where it can be written, and without it where it cannot.

A kernel is compiled when its module is imported (one explicit signature each), so that a
compile error, or a cache that cannot be read or written, shows at start and never in the
middle of a commit. numba looks for a cache directory in this order: ``NUMBA_CACHE_DIR``,
the package's own ``__pycache__`` (if writable), the user's cache directory
(``~/.cache/numba``); if none can be written (a read-only install run by a user without a
home, as under systemd's ``DynamicUser=`` with ``ProtectHome=``, and ``NUMBA_CACHE_DIR``
unset), or the cache is unreadable (another numba version, a full disk), the kernels are
compiled without it: the daemon starts all the same, only a few seconds later
(:data:`STATUS` says which, and how long compiling took). deploy/systemd/watchdog.service
points ``NUMBA_CACHE_DIR`` at its ``CacheDirectory=``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CompileStatus:
    """What compiling the kernels of this process did."""

    seconds: float = 0.0  # spent compiling or loading them from the cache
    kernels: int = 0
    uncached: list[str] = field(default_factory=list)  # compiled without the cache: why

    @property
    def cached(self) -> bool:
        return not self.uncached


STATUS = CompileStatus()


def kernel(signature: str) -> Callable[[F], F]:
    """Compile a function with numba (nopython mode) for ``signature``, now, with numba's
    cache if it works and without it if it does not."""

    def compile_(fn: F) -> F:
        began = time.perf_counter()
        try:
            out = numba.njit(signature, cache=True)(fn)
        except Exception as exc:  # any cache failure; a real error recurs below
            out = numba.njit(signature, cache=False)(fn)
            STATUS.uncached.append(f"{fn.__qualname__}: {type(exc).__name__}: {exc}")
        STATUS.seconds += time.perf_counter() - began
        STATUS.kernels += 1
        return cast(F, out)

    return compile_
