"""Refuse to run beside PyPI's unrelated ``watchdog`` (file-system events).

Both distributions install the import package ``watchdog``: whichever was installed last
overwrites the other's files (``watchdog/events.py`` exists in both), and uninstalling one
deletes files of the other. Nothing then works and the errors point nowhere near the cause,
so the command line checks first and says what happened and what to do.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: files only PyPI's ``watchdog`` puts in the ``watchdog`` package directory
_FOREIGN_FILES = ("observers", "tricks", "watchmedo.py")


def _foreign_dists(paths: list[str]) -> list[str]:
    """``watchdog-X.dist-info`` directories on ``paths`` (ours is ``watchdog_privacy-...``).

    A directory listing per path entry, not importlib.metadata (which costs ~30 ms at every
    start of the command)."""
    found = []
    for entry in paths:
        p = Path(entry or ".")
        try:
            names = [c.name for c in p.iterdir() if c.name.startswith("watchdog-")]
        except OSError:  # a zip, a missing directory
            continue
        found += [str(p / n) for n in names if n.endswith((".dist-info", ".egg-info"))]
    return sorted(found)


def foreign_watchdog(paths: list[str] | None = None) -> str | None:
    """A one-line reason if another distribution provides the ``watchdog`` package."""
    others = _foreign_dists(sys.path if paths is None else paths)
    here = Path(__file__).resolve().parent
    stray = [f for f in _FOREIGN_FILES if (here / f).exists()]
    if not others and not stray:
        return None
    what = (", ".join(others) if others else f"its files {', '.join(stray)} in {here}")
    return ("PyPI's 'watchdog' (a file-system events library) is installed in this "
            f"environment ({what}); it shares the import name 'watchdog' with "
            "watchdog-privacy and their files overwrite each other. Install watchdog-privacy "
            "in an environment of its own (python -m venv, pipx, or the container image)")
