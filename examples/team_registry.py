"""A team's schedule registry, step by step: publish, alias, train, move, resume, audit, diff.

    python examples/team_registry.py             # the registry in a SQLite file
    python examples/team_registry.py --postgres  # in a throwaway Postgres it starts (tools/postgres.py)

It starts its own server (`lrbridge serve --registry STORE --admin ENDPOINT`)
on private ipc:// endpoints, and prints each step:

1. publish ``team/cosine`` v1 (warmup then cosine) and point ``prod`` at it;
2. two runs train a small model on ``team/cosine@prod``; run a checkpoints halfway;
3. publish v2 (a longer warmup) and move ``prod`` to it (compare-and-set);
4. run a resumes: the checkpoint pinned v1, so ``Schedule`` refuses with the diff;
   it continues with ``on_change="checkpoint"`` (v1), another with ``"current"`` (v2 from the resume step);
5. ``runs``: which runs used which version, and what a replay of a run needs;
   ``lrbridge replay RUN`` gives run b's lrs again;
   ``history``: who moved ``prod``, when, why;
6. ``diff``: where v1 and v2 part.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python_client"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import lrbridge  # noqa: E402
from lrbridge import registry  # noqa: E402
from lrbridge import spec as S  # noqa: E402
from lrbridge.embedded import ServerProcess, server_command  # noqa: E402
from lrbridge.errors import ScheduleChanged  # noqa: E402

NAME = "team/cosine"
STEPS = 40
CHECKPOINT_AT = 20
V1 = S.warmup(S.cosine(STEPS - 4, end=0.01), steps=4)
V2 = S.warmup(S.cosine(STEPS - 10, end=0.01), steps=10)


def say(title: str) -> None:
    print(f"\n== {title}")


def start_postgres(work: str) -> str:
    out = subprocess.run(
        [sys.executable, str(HERE.parent / "tools" / "postgres.py"), "start", os.path.join(work, "pg")],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def stop_postgres(work: str) -> None:
    subprocess.run([sys.executable, str(HERE.parent / "tools" / "postgres.py"), "stop", os.path.join(work, "pg")], check=False)


def model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(8, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def train(model, opt, sched, steps: int) -> list[float]:
    """A few steps of least squares on a fixed random problem; the lrs the schedule gave."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g)
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def fmt(lrs: list[float]) -> str:
    return " ".join(f"{v:.4f}" for v in lrs[:6]) + (" …" if len(lrs) > 6 else "")


def demo(serving: lrbridge.Client, admin: lrbridge.Client) -> None:
    prod = f"{NAME}@prod"

    say(f"publish {NAME} v1 and point prod at it (admin endpoint)")
    v1 = registry.publish(NAME, V1, message="warmup 4, cosine", admin=admin)
    print(f"published {v1} spec_hash {v1.spec_hash[:12]} (created: {v1.created})")
    again = registry.publish(NAME, V1, admin=admin)
    print(f"publishing the same content again gives {again} (created: {again.created})")
    registry.alias(NAME, "prod", v1.version, expect=None, why="first rollout", admin=admin)
    print(f"{prod} → {registry.resolve(prod, server=serving)}")

    say(f"two runs train on {prod}")
    os.environ["LRBRIDGE_RUN_ID"] = run_a = f"run-a-{uuid.uuid4().hex[:8]}"
    model, opt = model_and_optimizer()
    sched = lrbridge.Schedule(opt, prod, server=serving, run_name="run a")
    print(f"run a: lrs {fmt(train(model, opt, sched, CHECKPOINT_AT))} (checkpoint at step {CHECKPOINT_AT})")
    checkpoint = pickle.dumps({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()})
    pin = sched.state_dict()["_registry"]
    print(f"run a's checkpoint pins {pin['ref']} = {pin['name']} v{pin['version']}, engine {pin['engine']}, "
          f"digest of {pin['digest']['rows']} rows {pin['digest']['sha256'][:12]}")

    os.environ["LRBRIDGE_RUN_ID"] = run_b = f"run-b-{uuid.uuid4().hex[:8]}"
    model, opt = model_and_optimizer(1)
    sched = lrbridge.lr_scheduler.from_ref(opt, prod, server=serving, run_name="run b")
    lrs_b = train(model, opt, sched, STEPS)
    print(f"run b ({type(sched).__name__} from the ref): lrs {fmt(lrs_b)}")

    say(f"publish v2 and move prod from v1 to v2 (compare-and-set)")
    v2 = registry.publish(NAME, V2, message="warmup 10", admin=admin)
    moved = registry.alias(NAME, "prod", v2.version, expect=v1.version, why="longer warmup", admin=admin)
    print(f"published {v2}; prod moved {moved['from']} → {moved['to']}")

    say("run a resumes from its checkpoint")
    os.environ["LRBRIDGE_RUN_ID"] = run_a
    saved = pickle.loads(checkpoint)

    def resume(run_name: str = "run a", **kw):
        model, opt = model_and_optimizer()
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched = lrbridge.Schedule(opt, prod, server=serving, run_name=run_name, **kw)
        sched.load_state_dict(saved["sched"])
        return model, opt, sched

    try:
        resume()
    except ScheduleChanged as exc:
        print(f"ScheduleChanged: {exc}")
    model, opt, sched = resume(on_change="checkpoint")
    print(f"on_change='checkpoint': continues on v{sched.resolved['version']}: lrs {fmt(train(model, opt, sched, STEPS - CHECKPOINT_AT))}")
    os.environ["LRBRIDGE_RUN_ID"] = run_c = f"run-c-{uuid.uuid4().hex[:8]}"
    model, opt, sched = resume("run c", on_change="current")
    print(f"on_change='current' (as run c): switches to v{sched.resolved['version']} at step "
          f"{sched.resolved['switches'][-1]['step']}: lrs {fmt(train(model, opt, sched, STEPS - CHECKPOINT_AT))}")

    say(f"runs of {NAME}: who used which version")
    for run in registry.runs(NAME, server=serving):
        uses = ", ".join(f"v{u['version']} from step {u['step']}" for u in run["uses"])
        print(f"{run['name']:>6} ({run['id']}): {uses}")

    say(f"what the server recorded of run c: enough to replay it")
    (record,) = registry.runs(run=run_c, server=serving)
    for use in record["uses"]:
        print(f"use {use['ref']} = v{use['version']} from step {use['step']}, groups {use['groups']}")
    for event in record["events"]:
        print(f"{event['kind']} at step {event['step']}: {event['data']}")

    say(f"lrbridge replay {run_b}: run b's lrs again, from what the server recorded")
    csv = subprocess.run(
        [*server_command(), "replay", run_b, "--connect", serving.endpoint, "--steps", str(STEPS + 1)],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()
    print("\n".join(csv[:4]) + "\n…")
    replayed = [float(line.split(",")[csv[0].split(",").index("lr")]) for line in csv[2:]]
    print(f"the replay equals run b's {len(lrs_b)} lrs exactly: {replayed == lrs_b}")

    say(f"history of {NAME}: the alias moves")
    for event in registry.history(NAME, server=serving)["events"]:
        print(f"{event['alias']}: {event['from']} → {event['to']} by {event['who']} ({event.get('why')})")

    say("diff v1 v2")
    d = registry.diff(f"{NAME}@1", f"{NAME}@2", STEPS, server=serving)
    for p in d["paths"]:
        print(f"{p['path']}: {p['a']!r} → {p['b']!r}")
    print(f"values part at step {d['first_step']}; max abs diff {d['max_abs']:.4g}, max rel {d['max_rel']:.4g}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", action="store_true", help="keep the registry in a Postgres server started for the demo")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="lrbd-")
    try:
        store = start_postgres(work) if args.postgres else os.path.join(work, "registry.sqlite")
        print(f"registry: {store}")
        admin = f"ipc://{work}/admin.sock"
        with ServerProcess(args=["--registry", store, "--admin", admin]) as server:
            print(f"serving on {server.endpoint}, admin on {admin}")
            with lrbridge.Client(server.endpoint) as serving, lrbridge.Client(admin) as admin_client:
                demo(serving, admin_client)
    finally:
        if args.postgres:
            stop_postgres(work)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
