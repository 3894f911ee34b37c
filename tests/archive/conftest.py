"""Fixtures of the archive's tests (helpers.py holds the world they share; the daemon tests
use the fault-injection tests' stream)."""

from tests.archive.helpers import world_dir
from tests.faults.conftest import fault_world

__all__ = ["fault_world", "world_dir"]
