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
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

import lrbridge
from lrbridge import registry
from lrbridge.embedded import ServerProcess, node_executable
from lrbridge.errors import AliasConflict, BadRef, Forbidden, ScheduleChanged, UnknownRef, UnpinnedRef
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
    work = tempfile.mkdtemp(prefix="lrbr-")
    try:
        if request.param == "sqlite":
            yield os.path.join(work, "registry.sqlite")
            return
        if not _postgres_available():
            pytest.skip("no Postgres binaries (make postgres installs them)")
        pg = os.path.join(work, "pg")
        url = subprocess.run(
            [sys.executable, str(REPO_ROOT / "tools" / "postgres.py"), "start", pg],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        try:
            yield url
        finally:
            subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "postgres.py"), "stop", pg], check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def registry_server(store, server_cli):
    """A server with the store: serving and admin on ipc:// (admin messages go to the admin one)."""
    sockets = tempfile.mkdtemp(prefix="lrba-")
    admin = f"ipc://{sockets}/admin.sock"
    process = ServerProcess(command=[node_executable(), str(server_cli)], args=["--registry", store, "--admin", admin])
    process.start(timeout=60)
    try:
        with lrbridge.Client(process.endpoint) as serving, lrbridge.Client(admin) as admin_client:
            yield process, serving, admin_client
    finally:
        process.stop()
        shutil.rmtree(sockets, ignore_errors=True)


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
    close(train(sched, opt, STEPS - CHECKPOINT_AT), torch_lrs(V1, STEPS)[CHECKPOINT_AT:])
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

    # diff: where v1 and v2 part
    d = registry.diff(f"{name}@1", f"{name}@2", 40, server=serving)
    assert d["paths"] == [{"path": "T_max", "a": 20, "b": 30}]
    assert d["first_step"] == 1 and d["max_abs"] > 0 and d["max_rel"] > 0


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


def test_a_tcp_serving_endpoint_refuses_registry_writes(store, server_cli, short_tmp):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = ServerProcess(f"tcp://127.0.0.1:{port}", command=[node_executable(), str(server_cli)], args=["--registry", store])
    process.start(timeout=60)
    try:
        with lrbridge.Client(process.endpoint) as serving:
            with pytest.raises(Forbidden):
                registry.publish(f"t{uuid.uuid4().hex[:10]}/y", V1, admin=serving)
    finally:
        process.stop()
