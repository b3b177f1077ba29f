"""Bounded work from the client's side: far resumes of replayed schedules
arrive in REPLAY_PENDING slices that the client walks through, limits come
with hello, and open churn from many other peers never fails an honest client.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import zmq

from lrbridge import Client, SpecError
from lrbridge.protocol import encode, decode


def test_hello_announces_the_limits(client):
    limits = client.hello()["limits"]
    for name in ("spec_depth", "spec_nodes", "expr_length", "expr_depth", "pieces", "milestones",
                 "fractal_horizon", "range_test_steps", "replay_rows", "window_work"):
        assert isinstance(limits[name], int) and limits[name] > 0, name


def test_a_spec_over_a_limit_is_a_spec_error_naming_it(client):
    with pytest.raises(SpecError, match="milestones") as err:
        client.open({"type": "MultiStepLR", "milestones": list(range(1, 5000))}, [{"lr": 0.1}])
    assert err.value.path == "milestones"


def test_resume_at_step_1e8_of_a_composite_with_4_groups(server):
    """About 1e8 simulated steps: many REPLAY_PENDING slices, each a prompt reply.

    StepLR and MultiStepLR with gamma 0.5 multiply by exact powers of two, so
    the lr at any step is known exactly without torch.
    """
    spec = {
        "type": "ChainedScheduler",
        "schedulers": [
            {"type": "StepLR", "step_size": 25_000_000, "gamma": 0.5},
            {"type": "MultiStepLR", "milestones": [50_000_000], "gamma": 0.5},
        ],
    }
    groups = [{"lr": lr, "momentum": 0.9} for lr in (0.1, 0.2, 0.3, 0.4)]
    with Client(server, timeout=2.0, retries=3) as client:
        opened = client.open(spec, groups)
        start = 100_000_000
        window = client.window(opened, start - 2, 4)
    base = np.array([0.1, 0.2, 0.3, 0.4])
    # Row k = after k steps: StepLR halved floor(k / 25e6) times, MultiStepLR once from 5e7 on.
    expected = np.stack([base * 0.5 ** (k // 25_000_000 + (k >= 50_000_000)) for k in range(start - 2, start + 2)])
    np.testing.assert_array_equal(window.lr, expected)


def test_churn_from_many_peers_never_fails_an_honest_client(server):
    """300 peers open new specs as fast as they can while an honest client opens and reads windows."""
    stop = threading.Event()
    opened_by_attackers = [0]

    def churn(worker: int) -> None:
        ctx = zmq.Context.instance()
        sockets = []
        for _ in range(30):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(server)
            sockets.append(s)
        n = 0
        try:
            while not stop.is_set():
                for s in sockets:
                    n += 1
                    spec = {"type": "StepLR", "step_size": 1 + worker * 1_000_000 + n, "gamma": 0.5}
                    s.send(encode({"v": 2, "id": n, "type": "open", "spec": spec, "groups": [{"lr": 0.1}]}))
                for s in sockets:
                    if s.poll(5000):
                        assert decode(s.recv())["type"] == "opened"
                        opened_by_attackers[0] += 1
        finally:
            for s in sockets:
                s.close(linger=0)

    threads = [threading.Thread(target=churn, args=(w,), daemon=True) for w in range(10)]
    for t in threads:
        t.start()
    try:
        with Client(server) as client:
            for i in range(60):
                spec = {"type": "StepLR", "step_size": 7, "gamma": 0.9 + i * 1e-4}
                opened = client.open(spec, [{"lr": 0.1}])
                window = client.window(opened, 10, 4)
                np.testing.assert_allclose(window.lr[:, 0], 0.1 * (0.9 + i * 1e-4) ** np.array([1, 1, 1, 1]), rtol=1e-15)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert opened_by_attackers[0] > 300
