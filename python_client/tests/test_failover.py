"""Replicas: several real servers behind one endpoint list, one of them killed
(SIGKILL) and restarted while training clients step, compared with torch."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest
import torch
from sched_helpers import PARITY, make_optimizer, mark_stepped, values

import lrbridge._scheduler_base as scheduler_base
from lrbridge import Client
from lrbridge import lr_scheduler as B
from lrbridge.failover import FreelanceTransport
from lrbridge.prefetch import WindowStream

T = torch.optim.lr_scheduler
COSINE = {"type": "CosineAnnealingLR", "T_max": 50, "eta_min": 0.0}
GROUPS = [{"lr": 0.1}, {"lr": 0.02}]

pytestmark = pytest.mark.filterwarnings("ignore:The epoch parameter")


def free_tcp() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def replicas(fresh_server):
    """Factory: ``replicas(n)`` real servers on loopback tcp (ServerProcess each)."""

    def start(n: int):
        return [fresh_server(free_tcp()) for _ in range(n)]

    return start


def opens_logged(server) -> int:
    """Opens a server has logged on stderr (one line per open)."""
    return sum(" open peer=" in line for line in server.stderr().splitlines())


# --------------------------------------------------------------------------
# One client


def test_a_killed_replica_is_left_for_another_with_the_same_values(replicas):
    servers = replicas(2)
    client = Client([s.endpoint for s in servers], timeout=5.0, retries=3)
    opened = client.open(COSINE, GROUPS)
    before = client.window(opened, 0, 40)
    serving = client._transport.preferred
    servers[serving].kill()
    started = time.monotonic()
    after = client.window(opened, 0, 40)  # the other replica: UNKNOWN_HASH, re-open there, window
    assert time.monotonic() - started < 3.0  # the closed connection, not the 5 s timeout
    assert client._transport.preferred == 1 - serving
    np.testing.assert_array_equal(after.lr, before.lr)


def test_a_stream_follows_the_client_through_kills_and_restarts(replicas):
    servers = replicas(2)
    client = Client([s.endpoint for s in servers], timeout=1.0, retries=3)
    opened = client.open(COSINE, GROUPS)
    expected = client.window(opened, 0, 400).lr.tolist()
    stream = WindowStream(client, opened, window=16)
    got = []
    for k in range(400):
        if k in (100, 250):  # the replica serving the stream dies with a prefetch in flight
            victim = servers[client._transport.preferred]
            victim.kill()
            victim.restart()
        got.append(list(stream.row(k)[0]))
    assert got == expected


def test_the_drop_in_takes_a_list_of_replicas(replicas):
    servers = replicas(2)
    opt_t, opt_b = make_optimizer("sgd2"), make_optimizer("sgd2")
    ours = B.OneCycleLR(opt_b, max_lr=0.5, total_steps=300, server=[s.endpoint for s in servers])
    theirs = T.OneCycleLR(opt_t, max_lr=0.5, total_steps=300)
    assert isinstance(ours._client_for()._transport, FreelanceTransport)
    for k in range(299):
        if k == 150:
            servers[ours._client_for()._transport.preferred].kill()
        for opt, sched in ((opt_t, theirs), (opt_b, ours)):
            mark_stepped(opt)
            sched.step()
        PARITY.compare(values(opt_t), values(opt_b), f"OneCycleLR step {k + 1}")


def test_a_forked_child_uses_its_own_sockets(replicas):
    servers = replicas(2)
    client = Client([s.endpoint for s in servers], timeout=2.0, retries=3)
    opened = client.open(COSINE, GROUPS)
    expected = client.window(opened, 0, 8).lr.tolist()
    pid = os.fork()
    if pid == 0:  # the child: the parent's sockets are not touched, new ones are made
        code = 1
        try:
            code = 0 if client.window(opened, 0, 8).lr.tolist() == expected else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.window(opened, 0, 8).lr.tolist() == expected  # the parent's sockets still work


# --------------------------------------------------------------------------
# 3 replicas, 16 training clients, a replica killed and restarted


def _plateau(client: Client):
    def build(opt, torch_side: bool):
        kwargs = dict(mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=1e-4)
        return T.ReduceLROnPlateau(opt, **kwargs) if torch_side else B.ReduceLROnPlateau(opt, **kwargs, server=client)

    return build


def _deterministic(name: str, kwargs: dict, client):
    def build(opt, torch_side: bool):
        return getattr(T, name)(opt, **kwargs) if torch_side else getattr(B, name)(opt, **kwargs, server=client)

    return build


SCHEDULES = [
    ("CosineAnnealingWarmRestarts", {"T_0": 37, "T_mult": 2, "eta_min": 1e-4}),
    ("OneCycleLR", {"max_lr": 0.4, "total_steps": 100_000}),
    ("StepLR", {"step_size": 29, "gamma": 0.9}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.2, "step_size_up": 23, "mode": "exp_range", "gamma": 0.999}),
    ("ExponentialLR", {"gamma": 0.9995}),
    ("PolynomialLR", {"total_iters": 100_000, "power": 1.5}),
]


class TrainingClient(threading.Thread):
    """Steps a drop-in and torch's own scheduler side by side until told to stop.

    Each starts a new run (a new scheduler, so a new ``open``) every ``run_steps``.
    """

    def __init__(self, index: int, endpoints: list[str], stop: threading.Event, run_steps: int = 400) -> None:
        super().__init__(daemon=True)
        self.index, self.stop, self.run_steps = index, stop, run_steps
        # Default timeout and retries: what a user gets. A third of the clients
        # start on each replica (a client moves to the next replica when its own fails).
        self.client = Client(endpoints)
        self.client._transport.preferred = index % len(endpoints)
        if index % 4 == 0:
            self.name_, self.build = "ReduceLROnPlateau", _plateau(self.client)
        else:
            name, kwargs = SCHEDULES[index % len(SCHEDULES)]
            self.name_, self.build = name, _deterministic(name, kwargs, self.client)
        self.steps = 0
        self.runs = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.one_run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def one_run(self) -> None:
        kind = "sgd2" if self.index % 2 else "adam"
        opt_t, opt_b = make_optimizer(kind), make_optimizer(kind)
        theirs, ours = self.build(opt_t, True), self.build(opt_b, False)
        self.runs += 1
        for k in range(self.run_steps):
            if self.stop.is_set():
                return
            for opt, sched in ((opt_t, theirs), (opt_b, ours)):
                mark_stepped(opt)
                if self.name_ == "ReduceLROnPlateau":
                    sched.step(1.0 / (1 + (k % 17)) + 0.01 * self.index)
                else:
                    sched.step()
            PARITY.compare(values(opt_t), values(opt_b), f"client {self.index} {self.name_} run {self.runs} step {k + 1}")
            self.steps += 1


def test_three_replicas_sixteen_clients_a_replica_killed_and_restarted(replicas, monkeypatch):
    # Short windows, so the prefetch path is busy when a replica dies.
    monkeypatch.setattr(scheduler_base, "STREAM_WINDOW", 16)
    servers = replicas(3)
    endpoints = [s.endpoint for s in servers]
    stop = threading.Event()
    clients = [TrainingClient(i, endpoints, stop) for i in range(16)]
    for c in clients:
        c.start()

    def all_step_on(more: int = 50, within: float = 30.0) -> None:
        """Until every client has made ``more`` steps from now (each one got its replies)."""
        marks = [c.steps + more for c in clients]
        deadline = time.monotonic() + within
        while any(c.steps < mark and c.is_alive() for c, mark in zip(clients, marks)):
            assert time.monotonic() < deadline, f"steps {[c.steps for c in clients]}, wanted {marks}"
            time.sleep(0.05)

    try:
        all_step_on()
        assert opens_logged(servers[0]) > 0, "nobody was on the replica that is killed"
        servers[0].kill()  # SIGKILL: its clients' requests die with it
        all_step_on()
        servers[0].restart()
        all_step_on()
        # Another replica goes: its clients move to the restarted one, which
        # holds none of their handles (UNKNOWN_HASH, re-open there).
        servers[2].kill()
        all_step_on()
        servers[2].restart()
        all_step_on()
    finally:
        stop.set()
        for c in clients:
            c.join(30)
    errors = [f"client {c.index} ({c.name_}): {type(c.error).__name__}: {c.error}" for c in clients if c.error]
    assert not errors, "\n".join(errors)
    assert all(not c.is_alive() for c in clients)
    assert opens_logged(servers[0]) > 0, "no client moved to the restarted replica"
