"""Who is training: the run identity that `open` and heartbeats carry.

One id per run, shared by its ranks: ``LRBRIDGE_RUN_ID`` when set, else
torchrun's ``TORCHELASTIC_RUN_ID`` (every rank of a job sees the same one),
else a fresh uuid4 per process. The name is ``LRBRIDGE_RUN_NAME``, a
``run_name=`` argument, or ``host:pid script``.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from dataclasses import dataclass

_process_run_id: str | None = None


@dataclass(frozen=True)
class RunIdentity:
    id: str
    name: str
    host: str
    pid: int
    rank: int | None = None
    world_size: int | None = None

    def to_wire(self, step: int | None = None) -> dict:
        """The `run` map of an `open` (PROTOCOL.md, "open by ref, and runs")."""
        run: dict = {"id": self.id, "name": self.name}
        if self.rank is not None:
            run["rank"] = self.rank
        if self.world_size is not None:
            run["world_size"] = self.world_size
        run["host"] = self.host
        run["pid"] = self.pid
        if step is not None:
            run["step"] = int(step)
        return run


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _run_id() -> str:
    global _process_run_id
    for name in ("LRBRIDGE_RUN_ID", "TORCHELASTIC_RUN_ID"):
        value = os.environ.get(name)
        if value and value != "none":
            return value[:128]
    if _process_run_id is None:
        _process_run_id = uuid.uuid4().hex
    return _process_run_id


def current_run(run_name: str | None = None) -> RunIdentity:
    """This process's run identity (see the module doc)."""
    host = socket.gethostname()
    pid = os.getpid()
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    name = run_name or os.environ.get("LRBRIDGE_RUN_NAME") or f"{host}:{pid} {script}"
    return RunIdentity(
        id=_run_id(),
        name=name[:256],
        host=host,
        pid=pid,
        rank=_env_int("RANK"),
        world_size=_env_int("WORLD_SIZE"),
    )
