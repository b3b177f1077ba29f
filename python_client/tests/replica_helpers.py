"""Shared pieces of the replica tests: training clients stepped next to torch
while replicas are killed and restarted under them."""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

from sched_helpers import PARITY, make_optimizer, mark_stepped, values

from lrbridge import Client

SCHEDULES = [
    ("CosineAnnealingWarmRestarts", {"T_0": 37, "T_mult": 2, "eta_min": 1e-4}),
    ("OneCycleLR", {"max_lr": 0.4, "total_steps": 100_000}),
    ("StepLR", {"step_size": 29, "gamma": 0.9}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.2, "step_size_up": 23, "mode": "exp_range", "gamma": 0.999}),
    ("ExponentialLR", {"gamma": 0.9995}),
    ("PolynomialLR", {"total_iters": 100_000, "power": 1.5}),
]
PLATEAU = {"mode": "min", "factor": 0.5, "patience": 2, "threshold": 0.01, "cooldown": 1, "min_lr": 1e-4}


def free_tcp() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


class TrainingClient(threading.Thread):
    """Steps a drop-in and torch's own scheduler side by side until told to stop.

    Client ``index`` runs a ReduceLROnPlateau when ``index % 4 == 0``, else one
    of SCHEDULES; a third of the clients start on each replica. Each starts a
    new run (new schedulers, so a new ``open``) every ``run_steps`` steps.
    Subclasses build the two schedulers and name the run.
    """

    def __init__(self, index: int, endpoints: list[str], stop: threading.Event, run_steps: int) -> None:
        super().__init__(daemon=True)
        self.index, self.stop, self.run_steps = index, stop, run_steps
        # Default timeout and retries: what a user gets. A client moves to the
        # next replica when its own fails.
        self.client = Client(endpoints)
        self.client._transport.preferred = index % len(endpoints)
        self.kind, self.kwargs = ("ReduceLROnPlateau", PLATEAU) if index % 4 == 0 else SCHEDULES[index % len(SCHEDULES)]
        self.steps = 0
        self.runs = 0
        self.error: BaseException | None = None

    def label(self) -> str:
        return self.kind

    def schedulers(self, opt_t, opt_b) -> tuple:
        """(torch's, ours) on the two optimizers."""
        raise NotImplementedError

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.one_run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def one_run(self) -> None:
        kind = "sgd2" if self.index % 2 else "adam"
        opt_t, opt_b = make_optimizer(kind), make_optimizer(kind)
        theirs, ours = self.schedulers(opt_t, opt_b)
        self.runs += 1
        for k in range(self.run_steps):
            if self.stop.is_set():
                return
            for opt, sched in ((opt_t, theirs), (opt_b, ours)):
                mark_stepped(opt)
                if self.kind == "ReduceLROnPlateau":
                    sched.step(1.0 / (1 + (k % 17)) + 0.01 * self.index)
                else:
                    sched.step()
            PARITY.compare(values(opt_t), values(opt_b), f"client {self.index} {self.label()} run {self.runs} step {k + 1}")
            self.steps += 1


def through_kills(clients: list[TrainingClient], replicas: list, first_is_serving: Callable[[], bool]) -> None:
    """Runs the clients while replica 0 is killed (SIGKILL) and restarted, then
    replica 2, every client stepping on between each; fails with any client's error.

    After the second kill some clients land on the restarted replica, which
    holds none of their handles.
    """
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
        assert first_is_serving(), "nobody was on the replica that is killed"
        for victim in (replicas[0], replicas[2]):
            victim.kill()  # its clients' requests die with it; they go on on the others
            all_step_on()
            victim.restart()
            all_step_on()
    finally:
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(30)
    errors = [f"client {c.index} ({c.label()}): {type(c.error).__name__}: {c.error}" for c in clients if c.error]
    assert not errors, "\n".join(errors)
    assert all(not c.is_alive() for c in clients)
