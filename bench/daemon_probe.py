"""What bench/bench_archive.py reads about a running daemon and its broker: CPU per thread,
minor page faults, a topic's end offsets and a group's commits."""

from __future__ import annotations

import os
from pathlib import Path

from bench.bench_daemon import PARTITIONS, _ends, metric_sum


def thread_cpu(pid: int | None) -> dict[int, float]:
    """CPU seconds of each thread of a process so far (a thread that ended is not listed)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def minor_faults(pid: int | None) -> tuple[int, int]:
    """Minor page faults so far: the process's (ended threads included), its main thread's."""
    def minflt(stat: Path) -> int:
        return int(stat.read_text().rsplit(")", 1)[1].split()[7])
    return minflt(Path(f"/proc/{pid}/stat")), minflt(Path(f"/proc/{pid}/task/{pid}/stat"))


async def topic_ends(bs: str, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bs)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: off for tp, off in (await _ends(c, tps)).items()}
    finally:
        await c.stop()


async def committed(bs: str, topic: str, ends: dict[int, int], group: str) -> bool:
    """Every partition of ``topic`` committed up to ``ends`` by ``group``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        for p, end in ends.items():
            if (await c.committed(TopicPartition(topic, p)) or 0) < end:
                return False
        return True
    finally:
        await c.stop()


async def at_least(url: str, n: int) -> bool:
    return metric_sum(url, "watchdog_events_total") >= n
