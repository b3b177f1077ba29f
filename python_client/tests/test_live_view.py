"""The live view: a training process shows up in the server's `stats` (what `lrbridge top` prints)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from lrbridge.embedded import node_executable
from lrbridge.lr_scheduler import OneCycleLR


def test_a_run_shows_up_in_stats_with_its_spec_hash_and_progress(fresh_server, server_cli):
    proc = fresh_server()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    sched = OneCycleLR(opt, max_lr=0.2, total_steps=300, server=proc.endpoint)
    for _ in range(10):
        opt.step()
        sched.step()

    out = subprocess.run(
        [node_executable(), str(server_cli), "top", "--json", "--connect", proc.endpoint],
        capture_output=True, text=True, timeout=30, check=True,
    )
    import json

    stats = json.loads(out.stdout)
    [mine] = [s for s in stats["schedules"] if s["spec_hash"] == sched.state_dict()["_spec_hash"]]
    assert mine["type"] == "OneCycleLR"
    assert mine["row_end"] == 301
    assert mine["rows_served"] >= 11  # at least the rows this run has used
    assert any(c.startswith(f"{os.uname().nodename}:{os.getpid()} ") for c in mine["clients"])
    assert stats["errors"] == 0


TRAINER = Path(__file__).with_name("live_trainer.py")


def start_trainer(endpoint: str, name: str, steps: int, sleep_s: float, spec: dict) -> subprocess.Popen:
    env = {**os.environ, "LRBRIDGE_RUN_NAME": name, "PYTHONPATH": str(TRAINER.parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(TRAINER), endpoint, str(steps), str(sleep_s), json.dumps(spec)],
        env=env, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stats_of(server_cli, endpoint: str) -> dict:
    out = subprocess.run(
        [node_executable(), str(server_cli), "top", "--json", "--connect", endpoint],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return json.loads(out.stdout)


def wait_for(read, until, timeout: float = 20.0):
    """``read()`` again until ``until(value)``; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if until(value):
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_heartbeats_give_one_row_per_run_with_its_real_step_and_finished_at_exit(fresh_server, server_cli):
    proc = fresh_server()
    spec = {"type": "OneCycleLR", "max_lr": 0.2, "total_steps": 3000}
    slow = start_trainer(proc.endpoint, "slow run", 3000, 0.02, dict(spec))
    quick = start_trainer(proc.endpoint, "quick \x1b[2J run", 30, 0.0, dict(spec))
    try:
        def runs():
            return {r["name"]: r for r in stats_of(server_cli, proc.endpoint)["runs"]}

        # Same schedule, two runs: two rows.
        first = wait_for(runs, lambda r: len(r) == 2 and r["slow run"]["step"] > 0)
        assert first["slow run"]["spec_hash"] == first["quick \x1b[2J run"]["spec_hash"]
        assert first["slow run"]["total"] == 3000 and first["slow run"]["type"] == "OneCycleLR"
        # The real step, not the prefetched rows (which are all 401 already).
        assert 0 < first["slow run"]["step"] < 3000
        later = wait_for(runs, lambda r: r["slow run"]["step"] > first["slow run"]["step"])
        assert later["slow run"]["state"] == "running"
        quick.wait(timeout=30)
        done = wait_for(runs, lambda r: r["quick \x1b[2J run"]["state"] == "finished")
        assert done["quick \x1b[2J run"]["step"] == 30
        # What the drop-in wrote at its last step is what the heartbeat says.
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
        ref = OneCycleLR(opt, max_lr=0.2, total_steps=3000, server=proc.endpoint)
        for _ in range(30):
            opt.step()
            ref.step()
        assert done["quick \x1b[2J run"]["lr"] == ref.get_last_lr()
        assert done["quick \x1b[2J run"]["momentum"] == [opt.param_groups[0]["momentum"]]

        table = subprocess.run(
            [node_executable(), str(server_cli), "top", "--once", "--connect", proc.endpoint],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        assert "\x1b" not in table and "quick \\x1b[2J run" in table
        assert "finished" in table and "running" in table
    finally:
        slow.kill()
        quick.kill()


def test_heartbeats_go_from_the_background_thread_at_most_once_a_second_and_say_finished(server, monkeypatch):
    import gc
    import threading

    from lrbridge import heartbeat

    sent = []
    real_send = heartbeat._Beats._send

    def spy(self, endpoint, msg):
        sent.append((threading.current_thread().name, time.monotonic(), msg))
        real_send(self, endpoint, msg)

    monkeypatch.setattr(heartbeat._Beats, "_send", spy)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    # More steps than 3.5 s of stepping can reach on a fast machine.
    sched = OneCycleLR(opt, max_lr=0.3, total_steps=100_000_000, server=server)
    mine = sched._opened.hash
    started = time.monotonic()
    steps = 0
    while time.monotonic() - started < 3.5:
        opt.step()
        sched.step()
        steps += 1
    time.sleep(1.2)
    beats = [s for s in sent if s[2]["hash"] == mine]
    assert beats and all(name == "lrbridge-heartbeat" for name, _, _ in beats)  # never from step()
    assert len(beats) <= 5  # ~3.5 s of stepping: one a second, not one a step
    assert all(b[1] - a[1] > 0.9 for a, b in zip(beats, beats[1:]))
    assert beats[-1][2]["step"] == steps and beats[-1][2]["lr"] == sched.get_last_lr()
    assert beats[-1][2]["total"] == 100_000_000

    del sched
    gc.collect()
    time.sleep(1.5)
    final = [s for s in sent if s[2]["hash"] == mine][-1][2]
    assert final["state"] == "finished" and final["step"] == steps


def test_a_metric_driven_run_reports_each_lr_change_at_its_step(server_cli):
    import urllib.request

    from lrbridge import heartbeat
    from lrbridge.lr_scheduler import ReduceLROnPlateau

    proc = subprocess.Popen(
        [node_executable(), str(server_cli), "serve", "--bind", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = proc.stderr.readline().split()[-1]
        endpoint = proc.stdout.readline().split()[-1]
        heartbeat.set_run_name("plateau")
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = ReduceLROnPlateau(opt, factor=0.5, patience=2, server=endpoint)
        seen = {}
        for epoch in range(1, 21):
            before = opt.param_groups[0]["lr"]
            sched.step(1.0)  # never improves: the lr halves every 3 epochs
            if opt.param_groups[0]["lr"] != before:
                seen[epoch] = opt.param_groups[0]["lr"]
            time.sleep(0.1)
        assert len(seen) >= 5

        def run():
            with urllib.request.urlopen(url + "/api/runs", timeout=30) as reply:
                [row] = [r for r in json.load(reply)["runs"] if r["name"] == "plateau"]
            return row

        row = wait_for(run, lambda r: r["step"] == 20)
        assert {c["step"]: c["lr"][0] for c in row["changes"]} == seen
        assert row["kind"] == "metric" and row["type"] == "ReduceLROnPlateau"
    finally:
        heartbeat.set_run_name(None)
        proc.terminate()
        proc.wait(timeout=30)
