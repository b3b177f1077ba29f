"""The live view in a real browser: Debian's chromium-headless-shell driven by
Playwright, against a real server and two real training processes.

`make test` installs the browser (`make browser`). With
LRBRIDGE_UPDATE_SCREENSHOTS=1 the screenshots are written to docs/ (the
README shows them); otherwise to the test's temp dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from lrbridge.embedded import node_executable
from lrbridge.lr_scheduler import CosineAnnealingLR, OneCycleLR

CHROMIUM = Path("/usr/bin/chromium-headless-shell")
TRAINER = Path(__file__).with_name("live_trainer.py")
SLOW_NAME = "<script>alert(1)</script> slow"
QUICK_NAME = "quick run"
SLOW_SPEC = {"type": "OneCycleLR", "max_lr": 0.2, "total_steps": 3000}
QUICK_SPEC = {"type": "CosineAnnealingLR", "T_max": 1000}
TIMEOUT_S = 90  # the machines that run this are often busy

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: `make browser` installs it")


class Served:
    """`lrbridge serve --http`: its ZeroMQ endpoint and its web URL."""

    def __init__(self, server_cli: Path, *http_args: str) -> None:
        self.process = subprocess.Popen(
            [node_executable(), str(server_cli), "serve", "--bind", "tcp://127.0.0.1:0", *http_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.url = ""
        deadline = time.monotonic() + TIMEOUT_S
        while not self.url:
            line = self.process.stderr.readline()
            assert line and time.monotonic() < deadline, "the server did not announce its web view"
            if line.startswith("lrbridge web view on "):
                self.url = line.split()[-1]
        self.endpoint = self.process.stdout.readline().split()[-1]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def trainer(endpoint: str, name: str, steps: int, sleep_s: float, spec: dict) -> subprocess.Popen:
    env = {**os.environ, "LRBRIDGE_RUN_NAME": name, "PYTHONPATH": str(TRAINER.parents[1])}
    return subprocess.Popen(
        [sys.executable, str(TRAINER), endpoint, str(steps), str(sleep_s), json.dumps(spec)],
        env=env, stdout=subprocess.DEVNULL,
    )


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    if os.environ.get("LRBRIDGE_UPDATE_SCREENSHOTS") == "1":
        return Path(__file__).resolve().parents[2] / "docs"
    return tmp_path


def drop_in_rows(cls, spec: dict, endpoint: str, steps: int) -> tuple[list[float], list[float]]:
    """lr and momentum after 0..steps-1 steps of the drop-in, as a training loop sees them."""
    os.environ["LRBRIDGE_HEARTBEAT"] = "0"  # this reference is not a run to show
    try:
        return _drop_in_rows(cls, spec, endpoint, steps)
    finally:
        del os.environ["LRBRIDGE_HEARTBEAT"]


def _drop_in_rows(cls, spec: dict, endpoint: str, steps: int) -> tuple[list[float], list[float]]:
    spec = dict(spec)
    spec.pop("type")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    sched = cls(opt, **spec, server=endpoint)
    lr, mom = [], []
    for k in range(steps):
        if k:
            opt.step()
            sched.step()
        lr.append(opt.param_groups[0]["lr"])
        mom.append(opt.param_groups[0]["momentum"])
    return lr, mom


def test_the_page_shows_both_runs_live_their_planned_curve_and_keeps_names_inert(server_cli, browser, shots):
    served = Served(server_cli, "--http", "127.0.0.1:0")
    slow = trainer(served.endpoint, SLOW_NAME, 3000, 0.02, SLOW_SPEC)
    quick = trainer(served.endpoint, QUICK_NAME, 60, 0.05, QUICK_SPEC)
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 720})
        dialogs, errors = [], []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.goto(served.url + "/")

        def row(name: str):
            return page.locator("#runs tbody tr", has=page.get_by_role("link", name=name, exact=True))

        # Both runs appear, each as one row, named as their processes were.
        row(SLOW_NAME).wait_for()
        row(QUICK_NAME).wait_for()
        assert page.locator("#runs tbody tr").count() == 2
        # Live: the slow run's step moves on the open page (SSE, no reload).
        first = int(row(SLOW_NAME).get_attribute("data-step"))
        page.wait_for_function(
            "([sel, step]) => { const r = [...document.querySelectorAll('#runs tbody tr')].find(r => r.querySelector('a').textContent === sel); return r && +r.dataset.step > step; }",
            arg=[SLOW_NAME, first],
        )
        # The quick run ends: it is marked finished, the slow one still runs.
        page.locator("#runs tbody tr[data-state=finished]", has=page.get_by_role("link", name=QUICK_NAME, exact=True)).wait_for()
        assert row(SLOW_NAME).get_attribute("data-state") == "running"
        assert row(QUICK_NAME).locator("td.step").text_content() == "60"
        # The <script> name is text: no script element, no dialog, the link reads it verbatim.
        assert page.locator("#runs script").count() == 0
        assert row(SLOW_NAME).get_by_role("link").text_content() == SLOW_NAME
        page.screenshot(path=str(shots / "live-runs.png"))

        # The run's page: its planned curve equals the schedule's values, with a marker at the current step.
        row(SLOW_NAME).get_by_role("link").click()
        page.wait_for_selector("body[data-rendered]")
        assert page.locator("#run-name").text_content() == SLOW_NAME
        data = page.evaluate("window.lrbridge.chart.data")
        steps, lr, mom = [int(x) for x in data[0]], data[1], data[2]
        assert steps[0] == 0 and steps[-1] == 3000 and len(steps) == 3001
        expected_lr, expected_mom = drop_in_rows(OneCycleLR, SLOW_SPEC, served.endpoint, 3001)
        assert lr == expected_lr
        assert mom == expected_mom
        marker = page.evaluate("window.lrbridge.run.step")
        assert 0 < marker < 3000
        page.wait_for_function("(s) => window.lrbridge.run.step > s", arg=marker)  # the marker follows the run
        page.check("#log")
        assert page.evaluate("window.lrbridge.chart.scales.lr.distr") == 3
        page.wait_for_timeout(300)
        labels = page.evaluate("window.lrbridge.chart.axes[1]._values")  # the lr axis' tick labels as drawn
        assert "1e-5" in labels and "0" not in labels  # exponent labels: uPlot's own would print 1e-5 as "0"
        page.screenshot(path=str(shots / "live-run.png"))

        # The finished run's page says so, and its curve is the cosine's.
        page.goto(served.url + "/")
        row(QUICK_NAME).get_by_role("link").click()
        page.wait_for_selector("body[data-rendered]")
        assert page.locator("[data-fact=state] b").text_content() == "finished"
        data = page.evaluate("window.lrbridge.chart.data")
        n = len(data[0])
        assert data[1] == drop_in_rows(CosineAnnealingLR, QUICK_SPEC, served.endpoint, n)[0]

        # The registry page says there is no store here rather than failing.
        page.goto(served.url + "/registry")
        page.wait_for_selector("#registry-off")
        assert dialogs == [] and errors == []
    finally:
        slow.kill()
        quick.kill()
        served.stop()


def test_a_non_loopback_bind_needs_a_token_and_refuses_requests_without_it(server_cli, browser):
    refused = subprocess.run(
        [node_executable(), str(server_cli), "serve", "--bind", "tcp://127.0.0.1:0", "--http", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert refused.returncode == 2 and "--http-token" in refused.stderr

    served = Served(server_cli, "--http", "0.0.0.0:0", "--http-token", "s3cret-token")
    try:
        port = served.url.rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        page = browser.new_page()
        for path in ("/", "/api/runs", "/api/events", "/run/x", "/registry"):
            assert page.goto(base + path).status == 401, path
            assert page.goto(base + path + "?token=wrong-token!").status == 401, path
        assert page.goto(base + "/?token=s3cret-token").status == 200
        page.wait_for_selector("body[data-rendered]")  # the page's own requests carry the token
        request = urllib.request.Request(base + "/api/runs", headers={"authorization": "Bearer s3cret-token"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert json.load(reply)["runs"] == []
        # Read-only: anything but GET/HEAD is refused, token or not.
        post = urllib.request.Request(base + "/api/runs?token=s3cret-token", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused_post:
            urllib.request.urlopen(post, timeout=30)
        assert refused_post.value.code == 405
    finally:
        served.stop()


STEP_A = {"type": "StepLR", "step_size": 10, "gamma": 0.5}
STEP_B = {"type": "StepLR", "step_size": 15, "gamma": 0.5}


def test_the_registry_page_shows_names_versions_alias_history_and_where_two_versions_part(server_cli, browser, shots, tmp_path, monkeypatch):
    from lrbridge import Client, registry
    from lrbridge.lr_scheduler import from_ref

    served = Served(server_cli, "--registry", str(tmp_path / "registry.sqlite"), "--dev-admin", "--http", "127.0.0.1:0")
    try:
        with Client(served.endpoint) as client:
            registry.publish("team/warmup", STEP_A, message="halve every 10 steps", author="ann", admin=client)
            registry.publish("team/warmup", STEP_B, message="halve every 15 steps", author="bob", admin=client)
            registry.publish("team/cosine", QUICK_SPEC, message="cosine", author="ann", admin=client)
            registry.alias("team/warmup", "prod", 1, expect=None, why="first rollout", who="ann", admin=client)
            registry.alias("team/warmup", "prod", 2, expect=1, why="longer steps", who="bob", admin=client)
            # A run opened by ref: the run table shows the ref and the version it resolved to.
            monkeypatch.setenv("LRBRIDGE_RUN_NAME", "from prod")
            opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
            sched = from_ref(opt, "team/warmup@prod", server=client)
            for _ in range(5):
                opt.step()
                sched.step()

            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(TIMEOUT_S * 1000)
            page.goto(served.url + "/")
            run = page.locator("#runs tbody tr", has=page.get_by_role("link", name="from prod", exact=True))
            run.wait_for()
            assert run.locator("td.source").text_content() == "team/warmup@prod"
            assert run.locator("td.version").text_content() == "2"

            page.goto(served.url + "/registry")
            page.wait_for_selector("body[data-rendered]")
            assert page.locator("#names li").all_text_contents() == ["team/cosine", "team/warmup"]
            page.get_by_role("link", name="team/warmup", exact=True).click()
            page.wait_for_selector("#detail[data-name='team/warmup']")
            versions = [r.locator("td").all_text_contents()[:4] for r in page.locator("#versions tbody tr").all()]
            assert [[v, a, m] for v, _, a, m in versions] == [["1", "ann", "halve every 10 steps"], ["2", "bob", "halve every 15 steps"]]
            history = [r.locator("td").all_text_contents()[:5] for r in page.locator("#alias-history tbody tr").all()]
            assert history == [["prod", "–", "1", "ann", "first rollout"], ["prod", "1", "2", "bob", "longer steps"]]

            # v1 and v2 overlaid: they part where StepLR(10) first halves and StepLR(15) does not yet.
            page.select_option("#pick-a", "team/warmup@1")
            page.select_option("#pick-b", "team/warmup@2")
            page.click("#overlay-go")
            page.wait_for_function("() => !!(window.lrbridge.overlay && window.lrbridge.overlay.chart)")
            lr_a = [1.0 * 0.5 ** (k // 10) for k in range(1000)]
            lr_b = [1.0 * 0.5 ** (k // 15) for k in range(1000)]
            parting = next(k for k in range(1000) if lr_a[k] != lr_b[k])
            assert parting == 10
            assert page.evaluate("window.lrbridge.overlay.first_step") == parting
            assert page.locator("#overlay-result").text_content() == f"they part at step {parting}"
            data = page.evaluate("window.lrbridge.overlay.chart.data")
            assert data[1][:30] == lr_a[:30] and data[2][:30] == lr_b[:30]
            page.screenshot(path=str(shots / "live-registry.png"), full_page=True)
            assert errors == []
            del sched
    finally:
        served.stop()
