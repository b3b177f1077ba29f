"""Train by ref on a schedule written in TypeScript (examples/ts_schedule/fractal_warm.ts).

    make ts-module-demo        # or: .venv/bin/python examples/ts_schedule/train.py

A server with a SQLite registry starts; the TS author publishes the module
(``lrbridge publish team/fractal-warm fractal_warm.ts``: type check,
transpile, sandbox probe); the Python run opens ``team/fractal-warm@1`` with
its params, trains, and prints its lrs and momenta next to the same schedule
written as a JSON spec, checking they are identical.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

import lrbridge
from lrbridge import Schedule, spec as S
from lrbridge.embedded import ServerProcess, server_command

HERE = Path(__file__).resolve().parent
PARAMS = {"total": 600, "warm": 60, "every": 50}
NAME = "team/fractal-warm"

# fractal_warm.ts as a JSON spec
JSON_SPEC = S.with_momentum(
    S.join([S.linear(60, start=0.0, end=1.0), S.sample(S.rex(540), every=50)], [60]),
    S.join([S.linear(60, start=0.95, end=0.85), S.linear(540, start=0.85, end=0.95)], [60]),
)


def run(make_schedule) -> tuple[list[float], list[float], float]:
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    y = x @ torch.randn(16, 1) + 0.1 * torch.randn(512, 1)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = make_schedule(opt)
    lrs, moms = [], []
    for _ in range(PARAMS["total"]):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
    return lrs, moms, loss.item()


def publish(admin: str) -> str:
    """What the TS author runs: the CLI compiles the module and publishes its node."""
    argv = [*server_command(), "publish", NAME, str(HERE / "fractal_warm.ts"), "-m", "warmup, sampled REX, 1cycle momentum",
            "--params", json.dumps(PARAMS), "--connect", admin]
    print(f"$ lrbridge publish {NAME} fractal_warm.ts -m '...' --params '{json.dumps(PARAMS)}'")
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip())
    print(done.stdout.strip())
    return f"{NAME}@{done.stdout.split()[0].rsplit('@', 1)[1]}"


def main() -> None:
    work = tempfile.mkdtemp(prefix="lrbts-")
    try:
        admin = f"ipc://{work}/admin.sock"
        with ServerProcess(args=["--registry", f"{work}/registry.sqlite", "--admin", admin]) as server:
            ref = publish(admin)
            with lrbridge.Client(server.endpoint) as client:
                compare(ref, client)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(ref: str, client: lrbridge.Client) -> None:
    opened = []

    def by_ref(opt):
        opened.append(Schedule(opt, ref, params=PARAMS, server=client))
        return opened[-1]

    ts_lrs, ts_moms, ts_loss = run(by_ref)
    node = opened[0].canonical
    print(f"trained on {ref} with params {node['params']}: {len(node['code'])} characters of JavaScript, "
          f"library {node['library']}, handle hash {opened[0].spec_hash[:12]}")
    js_lrs, js_moms, js_loss = run(lambda opt: Schedule(opt, JSON_SPEC, server=client))
    print(f"{'step':>5}  {'lr (TS by ref)':>16}  {'lr (JSON spec)':>16}  {'momentum (TS)':>14}  {'momentum (JSON)':>15}")
    for k in (0, 1, 30, 59, 60, 61, 100, 150, 300, 450, 599):
        print(f"{k + 1:>5}  {ts_lrs[k]:>16.10g}  {js_lrs[k]:>16.10g}  {ts_moms[k]:>14.10g}  {js_moms[k]:>15.10g}")
    same = ts_lrs == js_lrs and ts_moms == js_moms
    print(f"final loss: {ts_loss:.6f} (TS module by ref), {js_loss:.6f} (JSON spec); identical lrs and momenta: {same}")
    if not same:
        raise SystemExit("the module and the JSON spec differ")


if __name__ == "__main__":
    main()
