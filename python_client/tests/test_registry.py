"""A team's registry workflow end to end, on the real server with a real store:
SQLite, and a real Postgres server (tools/postgres.py) that this module starts.

publish v1, alias prod → v1, two runs train on NS/x@prod; publish v2 and move
prod; a resumed run refuses, then continues with on_change; runs lists the
runs and their versions; a replay reproduces a run; diff says where v1 and v2
part. Values are checked against real torch.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from store_helpers import postgres_cluster, server_with_store

import lrbridge
from lrbridge import registry
from lrbridge.embedded import ServerProcess, node_executable
from lrbridge.errors import AliasConflict, BadRef, Forbidden, ScheduleChanged, StoreUnavailable, UnknownRef, UnpinnedRef
from lrbridge.lr_scheduler import CosineAnnealingLR, from_ref

REPO_ROOT = Path(__file__).resolve().parents[2]
V1 = {"type": "CosineAnnealingLR", "T_max": 20, "eta_min": 0.001}
V2 = {"type": "CosineAnnealingLR", "T_max": 30, "eta_min": 0.001}
LR = 0.1
STEPS = 16
CHECKPOINT_AT = 8
REL = 1e-12


def _postgres_available() -> bool:
    return bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(request):
    """Where the registry lives: a SQLite file, or a throwaway Postgres cluster."""
    if request.param == "sqlite":
        work = tempfile.mkdtemp(prefix="lrbr-")
        try:
            yield os.path.join(work, "registry.sqlite")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module")
def registry_server(store, server_cli):
    """A server with the store: serving and admin on ipc:// (admin messages go to the admin one)."""
    with server_with_store(server_cli, store) as (process, admin):
        with lrbridge.Client(process.endpoint) as serving, lrbridge.Client(admin) as admin_client:
            yield process, serving, admin_client


@pytest.fixture
def name():
    """A fresh name per test: the store is shared by the module's tests."""
    return f"t{uuid.uuid4().hex[:10]}/x"


def sgd() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=LR, momentum=0.9)


def train(sched, opt, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        opt.step()
        sched.step()
        seen.append(float(opt.param_groups[0]["lr"]))
    return seen


def torch_lrs(spec: dict, steps: int, *, switch_to: dict | None = None, at: int = 0) -> list[float]:
    """torch's own CosineAnnealingLR; ``switch_to``: its hyper-parameters changed after ``at`` steps."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=LR, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec["T_max"], eta_min=spec["eta_min"])
    seen = []
    for k in range(1, steps + 1):
        if switch_to is not None and k == at + 1:
            sched.T_max, sched.eta_min = switch_to["T_max"], switch_to["eta_min"]
        opt.step()
        sched.step()
        seen.append(float(opt.param_groups[0]["lr"]))
    return seen


def close(got, want) -> None:
    np.testing.assert_allclose(got, want, rtol=REL, atol=0)


def test_the_team_workflow(registry_server, name, monkeypatch):
    process, serving, admin = registry_server
    prod = f"{name}@prod"

    # publish v1; alias prod → v1 (it must not exist yet)
    v1 = registry.publish(name, V1, message="cosine over 20 steps", admin=admin)
    assert (v1.version, v1.created) == (1, True)
    assert registry.publish(name, dict(V1), admin=admin).version == 1  # same content, same version
    moved = registry.alias(name, "prod", 1, expect=None, why="first rollout", admin=admin)
    assert (moved["from"], moved["to"]) == (None, 1)

    # two runs train on NAME@prod: a Schedule and a drop-in from the ref
    monkeypatch.setenv("LRBRIDGE_RUN_ID", run_a := f"a-{uuid.uuid4().hex}")
    opt_a = sgd()
    sched_a = lrbridge.Schedule(opt_a, prod, server=serving, run_name="run a")
    lrs_a = train(sched_a, opt_a, CHECKPOINT_AT)
    ckpt = pickle.dumps({"sched": sched_a.state_dict(), "opt": opt_a.state_dict()})
    close(lrs_a, torch_lrs(V1, CHECKPOINT_AT))

    monkeypatch.setenv("LRBRIDGE_RUN_ID", run_b := f"b-{uuid.uuid4().hex}")
    opt_b = sgd()
    sched_b = from_ref(opt_b, prod, server=serving, run_name="run b")
    assert type(sched_b) is CosineAnnealingLR and sched_b.T_max == 20
    lrs_b = train(sched_b, opt_b, STEPS)
    close(lrs_b, torch_lrs(V1, STEPS))

    # publish v2 and move prod, compare-and-set from v1
    v2 = registry.publish(name, V2, message="cosine over 30 steps", admin=admin)
    assert v2.version == 2
    registry.alias(name, "prod", 2, expect=1, why="longer schedule", admin=admin)
    with pytest.raises(AliasConflict):
        registry.alias(name, "prod", 1, expect=1, admin=admin)
    assert registry.resolve(prod, server=serving).version == 2

    # run a resumes (same run id, as after a restart): refuses, then continues on its pinned v1
    monkeypatch.setenv("LRBRIDGE_RUN_ID", run_a)
    saved = pickle.loads(ckpt)

    def resumed(**kw):
        opt = sgd()
        opt.load_state_dict(saved["opt"])
        return opt, lrbridge.Schedule(opt, prod, server=serving, run_name="run a", **kw)

    opt, sched = resumed()
    with pytest.raises(ScheduleChanged) as info:
        sched.load_state_dict(saved["sched"])
    text = str(info.value)
    assert text.startswith(f"{prod} now → v2, checkpoint pinned v1"), text
    assert "T_max: 20 → 30" in text and "values part at step 1" in text
    assert info.value.diff["first_step"] == 1

    opt, sched = resumed(on_change="checkpoint")
    sched.load_state_dict(saved["sched"])
    lrs_a += train(sched, opt, STEPS - CHECKPOINT_AT)
    close(lrs_a, torch_lrs(V1, STEPS))
    assert sched.resolved["version"] == 1

    # a third run resumes the checkpoint on what prod names now, from the resume step
    monkeypatch.setenv("LRBRIDGE_RUN_ID", run_c := f"c-{uuid.uuid4().hex}")
    opt, sched = resumed(on_change="current")
    sched.load_state_dict(saved["sched"])
    lrs_c = train(sched, opt, STEPS - CHECKPOINT_AT)
    close(lrs_c, torch_lrs(V1, STEPS, switch_to=V2, at=CHECKPOINT_AT)[CHECKPOINT_AT:])
    assert sched.resolved["switches"] == [{"step": CHECKPOINT_AT + 1, "from": 1, "to": 2}]

    # runs: every run of the name, and the versions each used
    used = {r["id"]: sorted({u["version"] for u in r["uses"]}) for r in registry.runs(name, server=serving)}
    assert used == {run_a: [1], run_b: [1], run_c: [2]}
    assert {r["id"] for r in registry.runs(prod, server=serving)} == {run_c}
    assert {r["id"] for r in registry.runs(f"{name}@1", server=serving)} == {run_a, run_b}
    (a,) = registry.runs(run=run_a, server=serving)
    assert a["name"] == "run a" and [(u["version"], u["step"]) for u in a["uses"]] == [(1, 0), (1, CHECKPOINT_AT + 1)]

    # replay: the recorded uses and origins give each run's values again, exactly
    assert replay(serving, run_a, 1, STEPS) == lrs_a
    assert replay(serving, run_b, 1, STEPS) == lrs_b
    assert replay(serving, run_c, CHECKPOINT_AT + 1, STEPS) == lrs_c
    # `lrbridge replay RUN`: rows 0..STEPS of the run that trained without a resume
    assert cli_replay(process.endpoint, run_b, STEPS + 1)[1:] == lrs_b

    # diff: where v1 and v2 part
    d = registry.diff(f"{name}@1", f"{name}@2", 40, server=serving)
    assert d["paths"] == [{"path": "T_max", "a": 20, "b": 30}]
    assert d["first_step"] == 1 and d["max_abs"] > 0 and d["max_rel"] > 0


def replay(serving: lrbridge.Client, run_id: str, first: int, last: int) -> list[float]:
    """Rows first..last of a run from what the server recorded: at row k, the latest use at
    or before k (its version, groups and last_epoch), rebased at the latest origin since."""
    (run,) = registry.runs(run=run_id, server=serving)
    uses = sorted(run["uses"], key=lambda u: (u["step"], u["at"]))
    origins = sorted((e for e in run["events"] if e["kind"] == "origin"), key=lambda e: (e["step"], e["at"]))
    lrs = []
    for k in range(first, last + 1):
        use = [u for u in uses if u["step"] <= k][-1]
        opened = serving.open(None, use["groups"], use["last_epoch"], ref=f"{use['name']}@{use['version']}")
        since = [e for e in origins if use["step"] - 1 <= e["step"] < k]
        origin = {"step": since[-1]["step"], "lr": since[-1]["data"]["lr"]} if since else None
        lrs.append(float(serving.window(opened, k, 1, origin).lr[0, 0]))
    return lrs


def cli_replay(endpoint: str, run_id: str, steps: int) -> list[float]:
    """`lrbridge replay RUN`: the run's lr at rows 0..steps-1, one CSV row each."""
    out = subprocess.run(
        [node_executable(), str(REPO_ROOT / "dist" / "cli.js"), "replay", run_id, "--connect", endpoint, "--steps", str(steps)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()
    header = out[0].split(",")
    return [float(line.split(",")[header.index("lr")]) for line in out[1:]]


def test_unpinned_refs_warn_and_bad_refs_are_typed_errors(registry_server, name):
    process, serving, admin = registry_server
    registry.publish(name, V1, admin=admin)
    with pytest.warns(UnpinnedRef, match=f"{name} is unpinned .* resolved to {name}@1"):
        sched = lrbridge.Schedule(sgd(), name, server=serving)
    assert sched.resolved["version"] == 1
    with pytest.raises(UnknownRef, match=f"{name}@7"):
        registry.resolve(f"{name}@7", server=serving)
    with pytest.raises(BadRef):
        registry.resolve("Not A Ref!", server=serving)


def test_a_tcp_serving_endpoint_refuses_registry_writes_the_admin_one_takes_them(store, server_cli, short_tmp, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    admin = f"ipc://{short_tmp}/admin.sock"
    process = ServerProcess(
        f"tcp://127.0.0.1:{port}", command=[node_executable(), str(server_cli)], args=["--registry", store, "--admin", admin]
    )
    process.start(timeout=60)
    name = f"t{uuid.uuid4().hex[:10]}/y"
    try:
        with lrbridge.Client(process.endpoint) as serving:
            with pytest.raises(Forbidden):
                registry.publish(name, V1, admin=serving)
            with pytest.raises(UnknownRef):
                registry.resolve(name, server=serving)  # nothing was written
            monkeypatch.setenv("LRBRIDGE_ADMIN_ENDPOINT", admin)
            assert registry.publish(name, V1).version == 1
            assert registry.resolve(name, server=serving).version == 1
    finally:
        process.stop()


DROP_INS = {
    "OneCycleLR": (
        {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 30, "pct_start": 0.5},
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=30, pct_start=0.5),
    ),
    "SequentialLR": (
        {"type": "SequentialLR", "milestones": [5], "schedulers": [
            {"type": "LinearLR", "start_factor": 0.1, "total_iters": 5}, {"type": "ExponentialLR", "gamma": 0.9}]},
        lambda opt: torch.optim.lr_scheduler.SequentialLR(opt, [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5),
            torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)], milestones=[5]),
    ),
}


@pytest.mark.parametrize("kind", sorted(DROP_INS))
def test_from_ref_gives_the_class_the_spec_names_with_torchs_values(registry_server, name, kind):
    process, serving, admin = registry_server
    spec, build_torch = DROP_INS[kind]
    registry.publish(name, spec, admin=admin)
    opt = sgd()
    sched = from_ref(opt, f"{name}@1", server=serving)
    assert type(sched).__name__ == kind and isinstance(sched, getattr(torch.optim.lr_scheduler, kind))
    ours = train(sched, opt, 25)
    ref_opt = sgd()
    close(ours, train(build_torch(ref_opt), ref_opt, 25))
    assert sched.state_dict()["_registry"]["version"] == 1


def test_from_ref_of_a_library_spec_is_a_schedule(registry_server, name):
    process, serving, admin = registry_server
    registry.publish(name, lrbridge.spec.warmup(lrbridge.spec.cosine(20), steps=5), admin=admin)
    sched = from_ref(sgd(), f"{name}@1", server=serving, on_change="checkpoint")
    assert type(sched) is lrbridge.Schedule and sched.ref == f"{name}@1" and sched._on_change == "checkpoint"


def test_plateau_from_ref_is_torchs_class_and_its_metric_steps_run_on_the_server(registry_server, name):
    process, serving, admin = registry_server
    registry.publish(name, {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}, admin=admin)
    opt = sgd()
    sched = from_ref(opt, f"{name}@1", server=serving)
    ref_opt = sgd()
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, patience=1, factor=0.5)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for loss in [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7]:
        sched.step(loss)
        ref.step(loss)
        assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"]


def test_a_store_that_goes_away_serves_cached_refs_and_refuses_writes(server_cli):
    """Postgres stopped under a running server: refs it resolved before still open (and say
    they came from its cache); publishing is StoreUnavailable; a pinned checkpoint resumes."""
    if not _postgres_available():
        pytest.skip("no Postgres binaries (make postgres installs them)")
    work = tempfile.mkdtemp(prefix="lrbs-")
    tool = [sys.executable, str(REPO_ROOT / "tools" / "postgres.py")]
    url = subprocess.run([*tool, "start", f"{work}/pg"], check=True, capture_output=True, text=True).stdout.split()[-1]
    admin = f"ipc://{work}/admin.sock"
    process = ServerProcess(command=[node_executable(), str(server_cli)], args=["--registry", url, "--admin", admin])
    try:
        process.start(timeout=60)
        with lrbridge.Client(process.endpoint) as serving, lrbridge.Client(admin) as admin_client:
            registry.publish("team/x", V1, admin=admin_client)
            registry.alias("team/x", "prod", 1, admin=admin_client)
            opt = sgd()
            sched = lrbridge.Schedule(opt, "team/x@prod", server=serving)
            train(sched, opt, 3)
            state = sched.state_dict()
            subprocess.run([*tool, "stop", f"{work}/pg"], check=True)

            with pytest.raises(StoreUnavailable):
                registry.publish("team/x", V2, admin=admin_client)
            with pytest.warns(UserWarning, match="came from the server's cache"):
                cached = lrbridge.Schedule(sgd(), "team/x@prod", server=serving)
            assert cached.resolved["version"] == 1
            opt2 = sgd()
            opt2.load_state_dict(opt.state_dict())
            resumed = lrbridge.Schedule(opt2, "team/x@1", server=serving)
            resumed.load_state_dict(state)
            close(train(resumed, opt2, 5), torch_lrs(V1, 8)[3:])
    finally:
        process.stop()
        subprocess.run([*tool, "stop", f"{work}/pg"], check=False)
        shutil.rmtree(work, ignore_errors=True)


def test_a_run_opened_by_ref_shows_its_ref_and_version_in_the_run_table(registry_server, name, monkeypatch):
    process, serving, admin = registry_server
    monkeypatch.setenv("LRBRIDGE_RUN_ID", f"ref-{uuid.uuid4().hex}")
    registry.publish(name, V1, admin=admin)
    registry.publish(name, V2, admin=admin)
    registry.alias(name, "prod", 2, admin=admin)
    opt = sgd()
    sched = from_ref(opt, f"{name}@prod", server=serving, run_name=f"{name} run")
    train(sched, opt, 3)
    deadline = time.monotonic() + 10
    mine = []
    while not mine and time.monotonic() < deadline:
        time.sleep(0.3)
        stats = serving.request({"type": "stats"})
        mine = [r for r in stats["runs"] if r["name"] == f"{name} run" and r["step"] == 3]
    assert mine, "the run's heartbeat did not arrive"
    assert (mine[0]["ref"], mine[0]["version"]) == (f"{name}@prod", 2)
