"""Fixtures of the archive's tests (helpers.py holds the world they share)."""

from tests.archive.helpers import world_dir

__all__ = ["world_dir"]
