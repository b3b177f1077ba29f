"""torchrun --nproc_per_node=2 (gloo, CPU): the ranks share one server, and
both step exactly as torch's schedulers do, plateau decisions included (the
metric is all-reduced before step(metric), as the README says)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * abs(b)


def test_two_ranks_share_one_server_and_match_torch(tmp_path, server_cli):
    env = {k: v for k, v in os.environ.items() if k not in ("LRBRIDGE_ENDPOINT", "LRBRIDGE_SHARED")}
    env["PYTHONPATH"] = str(HERE.parent)
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(HERE / "torchrun_job.py"), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    # One server: the same endpoint, exactly one owner, no private server anywhere,
    # and the server saw both ranks' processes.
    assert ranks[0]["endpoint"] == ranks[1]["endpoint"]
    assert sorted(r["owner"] for r in ranks) == [False, True]
    assert not any(r["private_server"] for r in ranks)
    pids = {str(r["pid"]) for r in ranks}
    seen = {label.split(":")[1].split()[0] for label in ranks[0]["clients"]}
    assert pids <= seen, (pids, ranks[0]["clients"])

    for r in ranks:
        for k, row in enumerate(r["rows"]):
            assert _close(row["lr"], row["ref_lr"]), (r["rank"], k, row)
            assert _close(row["plateau"], row["ref_plateau"]), (r["rank"], k, row)
    # The ranks' local losses differ, their plateau lrs do not (and they did reduce).
    assert any(a["local_loss"] != b["local_loss"] for a, b in zip(ranks[0]["rows"], ranks[1]["rows"]))
    assert [row["plateau"] for row in ranks[0]["rows"]] == [row["plateau"] for row in ranks[1]["rows"]]
    assert len({row["plateau"] for row in ranks[0]["rows"]}) > 1


def test_ranks_with_different_specs_are_stopped(tmp_path, server_cli):
    script = tmp_path / "job.py"
    script.write_text(
        "import torch, torch.distributed as dist\n"
        "from lrbridge.lr_scheduler import StepLR\n"
        "dist.init_process_group('gloo')\n"
        "opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)\n"
        "StepLR(opt, step_size=10 + dist.get_rank())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LRBRIDGE_ENDPOINT", "LRBRIDGE_SHARED")}
    env["PYTHONPATH"] = str(HERE.parent)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "disagree on their first schedule" in result.stderr
