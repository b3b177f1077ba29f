"""TypeScript schedule modules in the registry, on a real server with a SQLite store.

A module file is published (``lrbridge publish NAME FILE.ts`` and
``lrbridge.publish``): its node without params is the version, the same
source gives the same version and a one-character change a new one. A run
opens it by ref with its params, trains, and gets the lrs of the same
schedule written as a JSON spec; the params enter the handle's hash.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
import torch
from store_helpers import server_with_store

import lrbridge
from lrbridge import Schedule, registry, spec as S
from lrbridge.embedded import ServerProcess, node_executable
from lrbridge.errors import BadRequest, SpecError

FRACTAL_WARM = """\
import { join, warmup, rex } from "lrbridge/schedules";
export default (p: { total: number; warm: number }) =>
  join([warmup.linear(p.warm), rex(p.total - p.warm)], [p.warm]);
"""
PARAMS = {"total": 40, "warm": 5}
JSON_SPEC = S.join([S.linear(5, start=0.0, end=1.0), S.rex(35)], [5])


@pytest.fixture(scope="module")
def registry_server(server_cli):
    with server_with_store(server_cli) as (process, admin):
        yield process.endpoint, admin, server_cli


@pytest.fixture
def name():
    return f"t{uuid.uuid4().hex[:10]}/fractal-warm"


def cli_publish(cli, admin, name, path, *extra):
    done = subprocess.run(
        [node_executable(), str(cli), "publish", name, str(path), "-m", "from the test", "--connect", admin, *extra],
        capture_output=True, text=True, timeout=120,
    )
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def train(make, steps=40):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    sched = make(opt)
    lrs = []
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return sched, lrs


def test_cli_publishes_a_module_file_by_content(registry_server, name, tmp_path):
    _, admin, cli = registry_server
    path = tmp_path / "fractal.ts"
    path.write_text(FRACTAL_WARM)
    rc, first, err = cli_publish(cli, admin, name, path, "--params", '{"total": 40, "warm": 5}')
    assert rc == 0, err
    assert first.startswith(f"{name}@1 sha256:") and first.endswith("(published)")
    rc, again, err = cli_publish(cli, admin, name, path, "--params", '{"total": 400, "warm": 50}')
    assert rc == 0, err
    assert again.split()[:2] == first.split()[:2] and again.endswith("(already published: same content)")
    path.write_text(FRACTAL_WARM.replace("p.total - p.warm", "p.total + p.warm"))
    rc, changed, err = cli_publish(cli, admin, name, path, "--params", '{"total": 40, "warm": 5}')
    assert rc == 0, err
    assert changed.startswith(f"{name}@2 ") and changed.split()[1] != first.split()[1]
    with lrbridge.Client(admin) as client:
        node = registry.resolve(f"{name}@1", server=client).canonical
    assert node["type"] == "module" and node["params"] == {}


def test_a_factory_module_without_probe_params_is_refused(registry_server, name, tmp_path):
    _, admin, cli = registry_server
    path = tmp_path / "fractal.ts"
    path.write_text(FRACTAL_WARM)
    rc, _, err = cli_publish(cli, admin, name, path)
    assert rc == 1 and "total_steps" in err


def test_a_run_trains_on_a_module_by_ref_with_the_json_specs_lrs(registry_server, name, tmp_path):
    endpoint, admin, _ = registry_server
    path = tmp_path / "fractal.ts"
    path.write_text(FRACTAL_WARM)
    version = lrbridge.publish(name, path, "fractal warmup", admin=admin, params=PARAMS)
    assert version.version == 1 and version.created
    with lrbridge.Client(endpoint) as client:
        by_ref, ts_lrs = train(lambda opt: Schedule(opt, f"{name}@1", params=PARAMS, server=client))
        _, json_lrs = train(lambda opt: Schedule(opt, JSON_SPEC, server=client))
        longer, _ = train(lambda opt: Schedule(opt, f"{name}@1", params={**PARAMS, "total": 80}, server=client))
    assert ts_lrs == json_lrs
    assert by_ref.ref == f"{name}@1"
    assert by_ref.canonical["params"] == PARAMS
    assert longer.spec_hash != by_ref.spec_hash  # params enter the handle's hash


def test_replay_of_a_module_run_uses_the_runs_params(registry_server, name, tmp_path, monkeypatch):
    endpoint, admin, cli = registry_server
    path = tmp_path / "fractal.ts"
    path.write_text(FRACTAL_WARM)
    lrbridge.publish(name, path, "fractal warmup", admin=admin, params=PARAMS)
    monkeypatch.setenv("LRBRIDGE_RUN_ID", run_id := f"m-{uuid.uuid4().hex}")
    with lrbridge.Client(endpoint) as client:
        # total 80, not the probe's 40: only the run's params give these lrs back
        _, lrs = train(lambda opt: Schedule(opt, f"{name}@1", params={**PARAMS, "total": 80}, server=client))
    out = subprocess.run(
        [node_executable(), str(cli), "replay", run_id, "--connect", endpoint, "--steps", "41"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = out.stdout.strip().splitlines()
    lr = rows[0].split(",").index("lr")
    assert [float(r.split(",")[lr]) for r in rows[2:]] == lrs


def test_params_on_a_version_that_is_not_a_module_name_the_ref(registry_server, name):
    endpoint, admin, _ = registry_server
    lrbridge.publish(name, {"type": "CosineAnnealingLR", "T_max": 10}, admin=admin)
    with lrbridge.Client(endpoint) as client, pytest.raises(BadRequest, match=f"{name}@latest.*not a module"):
        Schedule(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), f"{name}@latest", params={"x": 1}, server=client)


def test_python_publish_of_a_module_that_does_not_compile_is_a_spec_error(registry_server, name, tmp_path):
    _, admin, _ = registry_server
    path = tmp_path / "bad.ts"
    path.write_text('import { readFileSync } from "fs";\nexport default () => 1;\n')
    with pytest.raises(SpecError, match="only lrbridge/schedules"):
        lrbridge.publish(name, path, admin=admin)


def test_serve_watch_publishes_a_new_version_on_save(server_cli, tmp_path):
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "fractal-warm.ts").write_text(FRACTAL_WARM)
    (schedules / "fractal-warm.params.json").write_text('{"total": 40, "warm": 5}')
    (schedules / "Bad_Name.ts").write_text(FRACTAL_WARM)  # not a registry name: skipped, the others still publish
    process = ServerProcess(
        command=[node_executable(), str(server_cli)],
        args=["--registry", str(tmp_path / "registry.sqlite"), "--dev-admin", "--watch", str(schedules), "--watch-namespace", "lab"],
    )
    process.start(timeout=60)
    try:
        with lrbridge.Client(process.endpoint) as client:
            first = registry.resolve("lab/fractal-warm", server=client)  # published before the server serves
            assert first.version == 1 and first.canonical["type"] == "module"
            (schedules / "fractal-warm.ts").write_text(FRACTAL_WARM.replace("p.total - p.warm", "p.total + p.warm"))
            deadline = time.monotonic() + 60
            latest = first
            while latest.version == 1 and time.monotonic() < deadline:
                time.sleep(0.2)
                latest = registry.resolve("lab/fractal-warm", server=client)
            assert latest.version == 2 and latest.spec_hash != first.spec_hash
            _, lrs = train(lambda opt: Schedule(opt, "lab/fractal-warm@2", params=PARAMS, server=client))
            assert lrs[0] > 0
    finally:
        process.stop()
