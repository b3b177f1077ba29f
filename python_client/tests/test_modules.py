"""TypeScript schedule modules from Python, on a real server and real torch.

A module is compiled by the Node CLI (``lrbridge compile``, through
``Schedule(opt, module=..., params=...)``), trains end to end, gives the
same lrs as the equivalent JSON spec, and hostile modules on the same
server neither stall an honest client nor grow the server's memory
without bound.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

import lrbridge
from lrbridge import Client, Schedule, SpecError, spec as S
from lrbridge.errors import LRBridgeError

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = json.loads((ROOT / "package.json").read_text())["version"]

FRACTAL_WARM = """\
import { join, warmup, rex } from "lrbridge/schedules";
export default (p: { total: number; warm: number }) =>
  join([warmup.linear(p.warm), rex(p.total - p.warm)], [p.warm]);
"""

WITH_MOMENTUM = """\
import { cosine, linear } from "lrbridge/schedules";
export default (p: { total: number }) => ({ lr: cosine(p.total, { end: 0.05 }), momentum: linear(p.total, { start: 0.85, end: 0.95 }) });
"""


def _model_and_opt(lr=0.1, momentum=0.9):
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def _train(sched, model, opt, steps):
    x = torch.randn(64, 8)
    y = x.sum(dim=1, keepdim=True)
    lrs, moms = [], []
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
    return lrs, moms


def test_a_module_trains_end_to_end_with_the_json_specs_lrs(server, tmp_path):
    path = tmp_path / "fractal_warm.ts"
    path.write_text(FRACTAL_WARM)
    model, opt = _model_and_opt()
    sched = Schedule(opt, module=path, params={"total": 400, "warm": 50}, server=server)
    got, _ = _train(sched, model, opt, 400)
    assert sched.canonical["type"] == "module" and sched.canonical["params"] == {"total": 400, "warm": 50}

    json_spec = S.join([S.linear(50, start=0.0, end=1.0), S.rex(350)], [50])
    model2, opt2 = _model_and_opt()
    want, _ = _train(Schedule(opt2, json_spec, server=server), model2, opt2, 400)
    assert got == want  # bit for bit
    assert model.weight.tolist() == model2.weight.tolist()


def test_a_module_sets_momentum(server, tmp_path):
    path = tmp_path / "mom.ts"
    path.write_text(WITH_MOMENTUM)
    model, opt = _model_and_opt()
    lrs, moms = _train(Schedule(opt, module=path, params={"total": 100}, server=server), model, opt, 100)
    json_spec = S.with_momentum(S.cosine(100, end=0.05), S.linear(100, start=0.85, end=0.95))
    model2, opt2 = _model_and_opt()
    assert (lrs, moms) == _train(Schedule(opt2, json_spec, server=server), model2, opt2, 100)


def test_same_source_same_hash_and_a_change_another(server, tmp_path):
    a, b, c = tmp_path / "a.ts", tmp_path / "b.ts", tmp_path / "c.ts"
    a.write_text(FRACTAL_WARM)
    b.write_text(FRACTAL_WARM)
    c.write_text(FRACTAL_WARM.replace("rex(p.total - p.warm)", "rex(p.total - p.warm, { w: 0.6 })"))
    params = {"total": 100, "warm": 10}
    hashes = [Schedule(_model_and_opt()[1], module=p, params=params, server=server).spec_hash for p in (a, b, c)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_compile_errors_are_spec_errors(tmp_path):
    bad = tmp_path / "bad.ts"
    bad.write_text('import { readFileSync } from "fs";\nexport default () => (t: number) => 1;\n')
    with pytest.raises(SpecError, match="only lrbridge/schedules can be imported, got 'fs'"):
        lrbridge.compile_module(bad)
    neg = tmp_path / "neg.ts"
    neg.write_text('export default () => (t: number) => -t;\n')
    with pytest.raises(SpecError, match="values must be finite and >= 0"):
        lrbridge.compile_module(neg)
    with pytest.raises(TypeError, match="not both"):
        Schedule(_model_and_opt()[1], S.constant(), module=bad)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


HOSTILE = [
    "while (true) {}",
    "var a = []; for (;;) a.push(new Array(1e5).fill(1.5));",
    "var s = 'x'; for (;;) s = s + s;",
    "function f(n) { return f(n + 1) + 1; } exports.default = function () { return function (t) { return f(t); }; };",
    "exports.default = function () { return function (t) { return require('fs').readFileSync('/etc/passwd').length; }; };",
    "exports.default = function () { var p = (function () {}).constructor('return process')(); return function () { return p.pid; }; };",
    "exports.default = function () { return function (t) { return Date.now(); }; };",
]
# passes the probe, then loops forever at serving time
SLOW_LATER = "exports.default = function () { return function (t) { if (t >= 20000 && t < 30000) { for (;;) {} } return 1; }; };"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's RSS from /proc")
def test_hostile_modules_are_contained_and_an_honest_client_is_served(fresh_server):
    served = fresh_server()
    pid = served.process.pid
    stop = threading.Event()
    outcomes: dict[str, int] = {"refused": 0, "other": 0}

    def attack():
        with Client(served.endpoint, timeout=30) as c:
            slow = c.open(S.module(SLOW_LATER, LIBRARY), [{"lr": 0.1}])
            i = 0
            while not stop.is_set():
                try:
                    if i % (len(HOSTILE) + 1) == len(HOSTILE):
                        c.window(slow, 20480 + 1024 * (i % 5), 1024)
                    else:
                        # a fresh params each time: no cache spares the sandbox its work
                        c.open(S.module(HOSTILE[i % (len(HOSTILE) + 1)], LIBRARY, {"i": i}), [{"lr": 0.1}])
                    outcomes["other"] += 1
                except (LRBridgeError, RuntimeError):  # SPEC_INVALID at open; REFUSED (RuntimeError) at a window
                    outcomes["refused"] += 1
                i += 1

    with Client(served.endpoint, timeout=30) as honest:
        opened = honest.open(S.cosine(100_000), [{"lr": 0.1}])
        honest.window(opened, 0, 1024)
        rss_before = _rss_kib(pid)
        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()
        worst = 0.0
        deadline = time.monotonic() + 12.0
        k = 0
        try:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                honest.window(opened, (k * 1024) % 90_000, 1024)
                worst = max(worst, time.monotonic() - t0)
                k += 1
                time.sleep(0.02)
        finally:
            stop.set()
            attacker.join(timeout=30)
        rss_after = _rss_kib(pid)
    print(f"hostile requests {outcomes}, honest worst {worst:.3f} s over {k} windows, RSS {rss_before} -> {rss_after} KiB")
    assert outcomes["refused"] >= len(HOSTILE) + 1, outcomes
    assert outcomes["other"] == 0, outcomes
    assert worst < 2.0, f"the honest client waited {worst:.2f} s"
    # each sandbox is limited to module_memory_bytes and disposed; the wasm heap keeps its high-water mark
    assert rss_after - rss_before < 256 * 1024, f"RSS grew from {rss_before} to {rss_after} KiB"
    assert served.alive()
