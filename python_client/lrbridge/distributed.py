"""Ranks of a torch.distributed job agree on their schedules.

Each rank asks its own (or its machine's) server for its values. A schedule's
values are a function of its spec and the engine that computes them, so once
per process, at the first schedule opened after ``init_process_group``, the
ranks exchange the spec_hash and the engine (server name and Node version)
and raise if any rank differs: a rank with another spec, another lrbridge or
another Node would silently train with other lrs.

Metric-driven schedules (ReduceLROnPlateau, plateau specs) step on the metric
each rank passes. Ranks stay in step when they pass the same number: reduce
it first, as with torch's own scheduler::

    loss = torch.tensor(local_val_loss)
    torch.distributed.all_reduce(loss, op=torch.distributed.ReduceOp.AVG)
    scheduler.step(loss.item())

lrbridge does not reduce the metric itself: ``step(metric)`` is no collective,
and which reduction (mean, sum, rank 0's) is the training script's choice.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

from .errors import LRBridgeError

_checked_pid: int | None = None


@functools.lru_cache(maxsize=1)
def _node_version() -> str:
    """The Node that runs servers started here (the job's engine on this machine)."""
    try:
        from .embedded import node_executable

        return subprocess.run([node_executable(), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # a central server's Node is not ours to know
        return "?"


def engine(client) -> str:
    server = str(client.hello().get("server", "?"))
    if os.environ.get("LRBRIDGE_ENDPOINT"):
        return server
    return f"{server} on node {_node_version()}"


def check_ranks_once(client, opened) -> None:
    """All ranks' first schedule has the same spec_hash and engine, or LRBridgeError on every rank."""
    global _checked_pid
    if _checked_pid == os.getpid() or "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    _checked_pid = os.getpid()
    mine = {"spec_hash": opened.spec_hash, "engine": engine(client)}
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    if any(other != everyone[0] for other in everyone):
        rows = "\n".join(f"  rank {r}: {v}" for r, v in enumerate(everyone))
        raise LRBridgeError(
            "lrbridge: the ranks of this job disagree on their first schedule (spec_hash) or on the "
            f"engine that computes it, so they would train with different lrs:\n{rows}\n"
            "Give every rank the same spec, lrbridge version and Node (LRBRIDGE_NODE)."
        )
