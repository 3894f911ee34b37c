"""``watchdog simulate``: a realistic, seeded, deterministic synthetic organisation.

It writes access events, directory, subject-register and identity-provider account records,
a policy written as commitments, and the ground truth of the violations it injected (and of
the near misses that must raise nothing)::

    from watchdog.simulate import SimConfig, build_world, write_world
    world = build_world(SimConfig(accounts=200, days=7))
    world.ground_truth          # known before any event is generated
    for ev in world.events():   # lazily, in event-time order
        ...
    write_world(world, Path("out"))

Clean traffic raises no alert under the contract's rules; each injected scenario raises
exactly the alerts it lists in ``truth.jsonl``. Modules, one concept each: ``catalog``
(the company's fixed facts), ``policy``, ``org`` (staff), ``directory`` (lifecycle), ``idp``
(the identity provider's account records),
``register`` (subjects), ``behaviour`` (what roles do), ``steps``, ``sessions`` (working
days), ``background`` (batch jobs), ``render`` (documents), ``stream`` (ordering,
sequences), ``scenarios`` (the registry of injected violations), ``world``, ``writer``,
``cli``.
"""

from watchdog.simulate.cli import add_arguments, run
from watchdog.simulate.config import SimConfig
from watchdog.simulate.world import World, build_world
from watchdog.simulate.writer import write_world

__all__ = ["SimConfig", "World", "add_arguments", "build_world", "run", "write_world"]
