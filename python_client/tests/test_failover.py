"""Replicas: several real servers behind one endpoint list, one of them killed
(SIGKILL) and restarted while training clients step, compared with torch."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch
import replica_helpers
from replica_helpers import free_tcp, through_kills
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


class TrainingClient(replica_helpers.TrainingClient):
    """The drop-in class built with the client, next to torch's."""

    def __init__(self, index: int, endpoints: list[str], stop: threading.Event, run_steps: int = 400) -> None:
        super().__init__(index, endpoints, stop, run_steps)

    def schedulers(self, opt_t, opt_b) -> tuple:
        return getattr(T, self.kind)(opt_t, **self.kwargs), getattr(B, self.kind)(opt_b, **self.kwargs, server=self.client)


def test_three_replicas_sixteen_clients_a_replica_killed_and_restarted(replicas, monkeypatch):
    # Short windows, so the prefetch path is busy when a replica dies.
    monkeypatch.setattr(scheduler_base, "STREAM_WINDOW", 16)
    servers = replicas(3)
    endpoints = [s.endpoint for s in servers]
    stop = threading.Event()
    clients = [TrainingClient(i, endpoints, stop) for i in range(16)]
    through_kills(clients, servers, lambda: opens_logged(servers[0]) > 0)
    assert opens_logged(servers[0]) > 0, "no client moved to the restarted replica"
