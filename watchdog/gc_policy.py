"""The cyclic garbage collector in long runs: the daemon, and a replay of millions of events.

Reference counting frees nearly everything watchdog makes; the collector is there for cycles.
Its *full* passes traverse every live container (rule windows, the reorder buffer, dedupe sets,
the anomaly features): about 0.1 s each at a million objects. CPython runs one every 10 passes
of the middle generation once the old generation has grown by a quarter, which a stream that
keeps windows full does all the time: the daemon catching up a day of a 20,000-account
organisation ran 37 full passes, 3.3 s, in 811k events (about 4 us an event, a sixth of its
CPU). :func:`settle` runs once the long-lived state is loaded: it freezes what is alive then (no
pass traverses it again) and makes full passes 100 times rarer. They still come, with the
volume of allocations, so cyclic garbage stays bounded.
"""

from __future__ import annotations

import gc

# middle-generation passes between two full passes (CPython's default is 10)
FULL_PASS_EVERY = 1000


def settle() -> None:
    """Collect, freeze what is alive, and space full passes out (see the module's doc)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_PASS_EVERY)
