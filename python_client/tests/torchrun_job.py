"""One rank of the torchrun test (test_torchrun.py): DDP on gloo, CPU.

Writes OUT/rank<R>.json: the lrs of lrbridge's OneCycleLR and
ReduceLROnPlateau next to torch's, fed the same all-reduced metric, and which
server this rank used.
"""

import json
import os
import sys

import torch
import torch.distributed as dist

import lrbridge
from lrbridge import embedded
from lrbridge.lr_scheduler import OneCycleLR, ReduceLROnPlateau

STEPS = 40


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = OneCycleLR(opt, max_lr=0.5, total_steps=STEPS)
    plateau_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plateau = ReduceLROnPlateau(plateau_opt, patience=1, factor=0.5)

    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.5, total_steps=STEPS)
    ref_plateau_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_plateau_opt, patience=1, factor=0.5)

    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own data: local losses differ
    x, y = torch.randn(32, 4, generator=gen), torch.randn(32, 1, generator=gen)
    rows = []
    for step in range(STEPS - 1):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        ref_opt.step()
        ref.step()
        # The metric every rank steps on: the mean of the ranks' losses (plateaus every few steps).
        metric = torch.tensor(round(loss.item(), 1) if step % 4 else 10.0)
        dist.all_reduce(metric, op=dist.ReduceOp.AVG)
        plateau.step(metric.item())
        ref_plateau.step(metric.item())
        rows.append({
            "lr": opt.param_groups[0]["lr"], "ref_lr": ref_opt.param_groups[0]["lr"],
            "plateau": plateau_opt.param_groups[0]["lr"], "ref_plateau": ref_plateau_opt.param_groups[0]["lr"],
            "local_loss": loss.item(),
        })
    machine = embedded._machine
    dist.barrier()
    clients = []
    if rank == 0:
        stats = lrbridge.default_client().request({"type": "stats"})
        clients = sorted({c for s in stats["schedules"] for c in s["clients"]})
    dist.barrier()
    report = {
        "rank": rank, "pid": os.getpid(), "rows": rows, "clients": clients,
        "endpoint": lrbridge.default_client().endpoint,
        "owner": machine is not None and machine.owner,
        "server_pid": machine.server.process.pid if machine is not None and machine.owner else None,
        "private_server": embedded._shared is not None,
    }
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
