"""The live view: a training process shows up in the server's `stats` (what `lrbridge top` prints)."""

from __future__ import annotations

import os
import subprocess

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
