"""The archive's benchmark (run as ``bench/bench_archive.py``, whose docstring has the measures
and what they found), by what it measures:

- ``traffic``: the simulated events the sink alone and the daemons are fed;
- ``sink_alone``: the pipeline's hand-over and the writer, in this process, one thread;
- ``daemon_rounds``: ``watchdog run`` without and with the archive in interleaved rounds
  (``--before``, ``--live``, ``--together``, ``--ab``), and ``round_table`` its summary rows;
- ``month_archive``: a simulated month written to an archive, grown to ``--big`` events, and
  its size; ``report_timing``: ``subject-report`` over it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: the daemons' working directory
KEY = "bench-key-0123456789abcdef"  # the pseudonym key of the daemons and of subject-report
BATCH = 5000  # the bench daemon's max_poll_records
