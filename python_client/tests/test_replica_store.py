"""Replicas on one Postgres registry: three real servers started with the same
``--registry postgres://…`` (a real cluster from tools/postgres.py), sixteen
training clients whose schedules are opened by ref, one replica killed
(SIGKILL) and restarted mid-run, then another. Every lr is compared with
torch's; a replica that never saw a handle loads it from the store, so no
client ever gets UNKNOWN_HASH back.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import torch
import replica_helpers
from replica_helpers import PLATEAU, SCHEDULES, free_tcp, through_kills
from sched_helpers import PARITY, make_optimizer, mark_stepped, values
from store_helpers import postgres_cluster

import lrbridge._scheduler_base as scheduler_base
from lrbridge import Client, registry
from lrbridge.embedded import ServerProcess, node_executable
from lrbridge.lr_scheduler import from_ref

T = torch.optim.lr_scheduler

pytestmark = pytest.mark.filterwarnings("ignore:The epoch parameter")


@pytest.fixture(scope="module")
def postgres():
    """A throwaway Postgres cluster: its URL (the module's tests use distinct names)."""
    with postgres_cluster() as url:
        yield url


class Replica:
    """A ServerProcess whose stderr is kept across kills and restarts."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.endpoint = process.endpoint
        self.earlier: list[str] = []

    def kill(self) -> None:
        self.process.kill()
        self.earlier.append(self.process.stderr())

    def restart(self) -> None:
        self.process.restart(timeout=60)

    def log(self) -> str:
        return "\n".join([*self.earlier, self.process.stderr()])

    def store_loads(self, since_restart: bool = False) -> int:
        log = self.process.stderr() if since_restart else self.log()
        return log.count("loaded from the store")


@pytest.fixture
def shared_store(postgres, server_cli, short_tmp):
    """(replicas, admin client): three servers on one store; the first also has an admin endpoint."""
    admin = f"ipc://{short_tmp}/admin.sock"
    started: list[ServerProcess] = []
    try:
        for k in range(3):
            extra = ["--admin", admin] if k == 0 else []
            process = ServerProcess(free_tcp(), command=[node_executable(), str(server_cli)], args=["--registry", postgres, *extra])
            started.append(process.start(timeout=60))
        with Client(admin) as admin_client:
            yield [Replica(p) for p in started], admin_client
    finally:
        for process in reversed(started):
            process.stop()


class TrainingClient(replica_helpers.TrainingClient):
    """A drop-in opened by ref next to torch's own class.

    Counts the handles its ``Client`` had to re-open: each is an UNKNOWN_HASH
    that reached it.
    """

    def __init__(self, index: int, endpoints: list[str], prefix: str, stop: threading.Event, run_steps: int = 300) -> None:
        super().__init__(index, endpoints, stop, run_steps)
        self.reopens = 0
        reopen = self.client._reopen

        def counted(opened):
            self.reopens += 1
            return reopen(opened)

        self.client._reopen = counted
        self.ref = f"{prefix}/{self.kind.lower()}@prod"

    def label(self) -> str:
        return self.ref

    def schedulers(self, opt_t, opt_b) -> tuple:
        for opt in (opt_t, opt_b):  # a handle of its own: no other client opens it on the replica it moves to
            for group in opt.param_groups:
                group["lr"] *= 1 + self.index / 64
        theirs = getattr(T, self.kind)(opt_t, **self.kwargs)
        ours = from_ref(opt_b, self.ref, server=self.client)
        assert type(ours).__name__ == self.kind
        return theirs, ours


def test_three_replicas_on_one_postgres_sixteen_clients_by_ref_a_replica_killed_and_restarted(shared_store, monkeypatch):
    monkeypatch.setattr(scheduler_base, "STREAM_WINDOW", 16)  # short windows: prefetches in flight at the kill
    replicas, admin = shared_store
    prefix = f"t{uuid.uuid4().hex[:8]}"
    for kind, kwargs in [*SCHEDULES, ("ReduceLROnPlateau", PLATEAU)]:
        name = f"{prefix}/{kind.lower()}"
        registry.publish(name, {"type": kind, **kwargs}, admin=admin)
        registry.alias(name, "prod", 1, expect=None, admin=admin)
    endpoints = [r.endpoint for r in replicas]
    stop = threading.Event()
    clients = [TrainingClient(i, endpoints, prefix, stop) for i in range(16)]
    through_kills(clients, replicas, lambda: " open peer=" in replicas[0].log())
    assert [c.reopens for c in clients] == [0] * len(clients), "an UNKNOWN_HASH reached a client"
    loads = [r.store_loads() for r in replicas]
    # Replica 0's clients moved to replica 1, replica 2's to the restarted replica 0: both served them from the store.
    assert loads[1] > 0, f"replica 1 served no handle from the store: {loads}"
    assert replicas[0].store_loads(since_restart=True) > 0, f"the restarted replica served no handle from the store: {loads}"


def test_an_alias_moved_through_one_replica_is_seen_by_the_others(shared_store):
    replicas, admin = shared_store
    name = f"t{uuid.uuid4().hex[:8]}/cosine"
    v1, v2 = {"type": "CosineAnnealingLR", "T_max": 20, "eta_min": 0.001}, {"type": "CosineAnnealingLR", "T_max": 30, "eta_min": 0.001}
    registry.publish(name, v1, admin=admin)
    registry.publish(name, v2, admin=admin)
    registry.alias(name, "prod", 1, expect=None, admin=admin)
    others = [Client(r.endpoint) for r in replicas[1:]]
    try:
        # Each other replica resolves prod once: it keeps that target until told of a move.
        assert [registry.resolve(f"{name}@prod", server=c).version for c in others] == [1, 1]
        registry.alias(name, "prod", 2, expect=1, admin=admin)  # on replica 0 (its admin endpoint)
        for c in others:
            deadline = time.monotonic() + 5
            while (version := registry.resolve(f"{name}@prod", server=c).version) != 2:
                assert time.monotonic() < deadline, "the move did not reach this replica"
                time.sleep(0.02)
            # A new run there opens v2: torch's CosineAnnealingLR with T_max 30.
            opt_t, opt_b = make_optimizer("sgd"), make_optimizer("sgd")
            theirs = T.CosineAnnealingLR(opt_t, T_max=30, eta_min=0.001)
            ours = from_ref(opt_b, f"{name}@prod", server=c)
            assert ours.T_max == 30
            for k in range(40):
                for opt, sched in ((opt_t, theirs), (opt_b, ours)):
                    mark_stepped(opt)
                    sched.step()
                PARITY.compare(values(opt_t), values(opt_b), f"{c.endpoint} step {k + 1}")
    finally:
        for c in others:
            c.close()
