"""Client round trips against the real node server, checked against torch 2.13 itself."""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import lrbridge
from lrbridge import Client, ProtocolError, default_client, resolve_client
from lrbridge.protocol import decode, encode
from lrbridge.prefetch import WindowStream

RTOL = 1e-12

STEP = {"type": "StepLR", "step_size": 3, "gamma": 0.5}
COSINE = {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 0.001}
ONECYCLE = {"type": "OneCycleLR", "max_lr": 1.0, "total_steps": 100}
PLATEAU = {"type": "ReduceLROnPlateau", "mode": "min", "factor": 0.5, "patience": 1}
TWO_GROUPS = [{"lr": 0.1}, {"lr": 0.01}]
SGD_MOMENTUM = [{"lr": 0.1, "momentum": 0.9}]


# --------------------------------------------------------------------------
# torch as the reference


def torch_optimizer(groups: list[dict]) -> torch.optim.Optimizer:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], **g} for g in groups]
    if any("betas" in g for g in groups):
        return torch.optim.Adam(params)
    return torch.optim.SGD(params, lr=groups[0]["lr"], momentum=groups[0].get("momentum", 0.0))


def torch_scheduler(spec: dict, optimizer: torch.optim.Optimizer):
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    return getattr(torch.optim.lr_scheduler, spec["type"])(optimizer, **kwargs)


def torch_rows(spec: dict, groups: list[dict], steps: int, edit: tuple[int, list[float]] | None = None):
    """lr (and momentum) rows 0..steps-1 as torch produces them; ``edit=(k, lrs)`` sets the lrs by hand at row k."""
    optimizer = torch_optimizer(groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = torch_scheduler(spec, optimizer)
        lr, momentum = [], []
        for k in range(steps):
            if edit is not None and k == edit[0]:
                for group, value in zip(optimizer.param_groups, edit[1]):
                    group["lr"] = value
            lr.append([g["lr"] for g in optimizer.param_groups])
            momentum.append([g.get("momentum", math.nan) for g in optimizer.param_groups])
            if k + 1 < steps:  # no step past the last row (OneCycleLR raises there)
                optimizer.step()
                scheduler.step()
    return np.array(lr), np.array(momentum)


# --------------------------------------------------------------------------
# hello / open


def test_hello_announces_protocol_2_and_its_capabilities(client):
    reply = client.hello()
    assert reply["type"] == "hello"
    assert reply["protocol"] == 2
    assert {"window", "metric", "rebase", "epoch"} <= set(reply["capabilities"])
    assert client.max_window == reply["max_window"] > 0


def test_open_describes_the_bound_schedule(client):
    opened = client.open(STEP, TWO_GROUPS)
    assert opened.kind == "deterministic"
    assert opened.groups == 2
    assert opened.chainable is True
    assert opened.momentum_key is None
    assert len(opened.spec_hash) == 64 and int(opened.spec_hash, 16) >= 0
    assert opened.canonical["type"] == "StepLR"
    assert opened.state is None and opened.lr is None


def test_open_is_idempotent_and_hash_depends_on_groups(client):
    first = client.open(STEP, TWO_GROUPS)
    again = client.open(dict(STEP), [dict(g) for g in TWO_GROUPS])
    other_groups = client.open(STEP, [{"lr": 0.2}])
    assert again.hash == first.hash
    assert other_groups.spec_hash == first.spec_hash
    assert other_groups.hash != first.hash


# --------------------------------------------------------------------------
# window / rebase / epoch / metric


def test_window_matches_torch_for_two_groups(client):
    opened = client.open(STEP, TWO_GROUPS)
    window = client.window(opened, 0, 20)
    expected, _ = torch_rows(STEP, TWO_GROUPS, 20)
    assert (window.start, window.count, window.groups) == (0, 20, 2)
    assert window.lr.dtype == np.float64 and window.lr.shape == (20, 2)
    assert window.momentum is None
    np.testing.assert_allclose(window.lr, expected, rtol=RTOL, atol=1e-15)


def test_window_from_an_offset_equals_the_same_rows_of_a_longer_window(client):
    opened = client.open(COSINE, TWO_GROUPS)
    whole = client.window(opened, 0, 50)
    part = client.window(opened, 17, 9)
    assert part.start == 17
    np.testing.assert_array_equal(part.lr, whole.lr[17:26])


def test_window_over_the_server_limit_is_fetched_in_pieces(client):
    opened = client.open(COSINE, TWO_GROUPS)
    whole = client.window(opened, 0, 40)
    client.max_window = 7  # as if the server announced a small limit
    pieced = client.window(opened, 0, 40)
    np.testing.assert_array_equal(pieced.lr, whole.lr)
    assert pieced.count == 40


def test_window_momentum_matches_torch(client):
    opened = client.open(ONECYCLE, SGD_MOMENTUM)
    window = client.window(opened, 0, 100)
    expected_lr, expected_momentum = torch_rows(ONECYCLE, SGD_MOMENTUM, 100)
    assert opened.momentum_key == "momentum"
    np.testing.assert_allclose(window.lr, expected_lr, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(window.momentum, expected_momentum, rtol=RTOL, atol=1e-15)


def test_rebase_continues_from_lrs_edited_by_hand_like_torch(client):
    opened = client.open(COSINE, TWO_GROUPS)
    edited = [0.05, 0.003]
    expected, _ = torch_rows(COSINE, TWO_GROUPS, 30, edit=(5, edited))
    rebased = client.window(opened, 6, 24, origin={"step": 5, "lr": edited})
    np.testing.assert_allclose(rebased.lr, expected[6:], rtol=RTOL, atol=1e-15)
    plain = client.window(opened, 6, 24)
    assert not np.allclose(plain.lr, rebased.lr)  # the origin really changed something


def test_epoch_follows_torchs_step_with_an_epoch(client):
    spec = {"type": "CosineAnnealingWarmRestarts", "T_0": 5, "T_mult": 2}
    epochs = [0.5, 1.0, 2.5, 7.0, 16.25, 3.0]
    optimizer = torch_optimizer(TWO_GROUPS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = torch_scheduler(spec, optimizer)
        expected = []
        for epoch in epochs:
            scheduler.step(epoch)
            expected.append([g["lr"] for g in optimizer.param_groups])
    window = client.epoch(client.open(spec, TWO_GROUPS), epochs)
    assert (window.start, window.count) == (0, len(epochs))
    np.testing.assert_allclose(window.lr, np.array(expected), rtol=RTOL, atol=1e-15)


def test_metric_steps_follow_torchs_reduce_lr_on_plateau(client):
    opened = client.open(PLATEAU, TWO_GROUPS)
    assert opened.kind == "metric"
    assert opened.lr == [0.1, 0.01] and isinstance(opened.state, dict)
    optimizer = torch_optimizer(TWO_GROUPS)
    scheduler = torch_scheduler(PLATEAU, optimizer)
    state = opened.state
    for metric in [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7, 0.8]:
        result = client.metric(opened, state, metric)
        scheduler.step(metric)
        state = result["state"]
        assert all(isinstance(v, float) for v in result["lr"])
        np.testing.assert_allclose(result["lr"], [g["lr"] for g in optimizer.param_groups], rtol=RTOL)
    assert result["lr"] != [0.1, 0.01]  # the plateau was reached at least once


def test_window_on_a_metric_schedule_is_wrong_kind(client):
    opened = client.open(PLATEAU, TWO_GROUPS)
    with pytest.raises(ProtocolError) as error:
        client.window(opened, 0, 4)
    assert error.value.code == "WRONG_KIND"


# --------------------------------------------------------------------------
# WindowStream


def test_stream_rows_equal_one_big_window_across_many_prefetches(client):
    opened = client.open(COSINE, TWO_GROUPS)
    whole = client.window(opened, 0, 1000)
    stream = WindowStream(Client(client.endpoint), opened, window=64)
    got = [stream.row(k)[0] for k in range(1000)]
    assert got == [tuple(r) for r in whole.lr.tolist()]
    assert all(type(v) is float for v in got[500])
    assert stream.row(999)[1] is None


def test_stream_fast_range_is_exposed_for_inlining(client):
    opened = client.open(COSINE, TWO_GROUPS)
    stream = WindowStream(Client(client.endpoint), opened, window=16)
    lr, _ = stream.row(0)
    assert stream.lo == 0 and 0 < stream.hi <= 16 and stream.n == stream.hi - stream.lo
    assert stream.lr_rows[0] == lr
    for k in range(stream.lo, stream.hi):
        assert stream.lr_rows[k - stream.lo] == stream.row(k)[0]


def test_stream_asks_for_the_next_window_as_soon_as_it_installs_one(client):
    """The next window travels while the caller steps through this one, not when it runs out."""
    opened = client.open(COSINE, TWO_GROUPS)
    stream = WindowStream(Client(client.endpoint), opened, window=16)
    stream.row(0)
    assert stream.settle()  # rows 16..31 are in memory before row 1 was asked for
    whole = client.window(opened, 0, 40)
    assert [stream.row(k)[0] for k in range(40)] == [tuple(r) for r in whole.lr.tolist()]


def test_stream_windows_add_no_gc_tracked_object_per_row(client):
    """A window is a few flat float64 buffers (row tuples used to trigger full collections)."""
    opened = client.open(COSINE, TWO_GROUPS)
    stream = WindowStream(Client(client.endpoint), opened, window=4096)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        stream.row(0)
        added = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert added < 100  # one per row would be 4096
    window = client.window(opened, 0, 4096)
    assert list(stream.lr_flat) == window.lr.ravel().tolist()


def test_stream_momentum_rows(client):
    opened = client.open(ONECYCLE, SGD_MOMENTUM)
    window = client.window(opened, 0, 100)
    stream = WindowStream(Client(client.endpoint), opened, window=8)
    rows = [stream.row(k) for k in range(100)]
    assert [m for _, m in rows] == [tuple(r) for r in window.momentum.tolist()]


def test_stream_seek_backwards_and_with_an_origin(client):
    opened = client.open(COSINE, TWO_GROUPS)
    stream = WindowStream(Client(client.endpoint), opened, start_step=40, window=16)
    whole = client.window(opened, 0, 80)
    assert stream.row(40)[0] == tuple(whole.lr[40])
    stream.seek(3)
    assert stream.row(3)[0] == tuple(whole.lr[3])
    edited = [0.02, 0.002]
    stream.seek(11, origin={"step": 10, "lr": edited})
    rebased = client.window(opened, 11, 30, origin={"step": 10, "lr": edited})
    assert [stream.row(k)[0] for k in range(11, 41)] == [tuple(r) for r in rebased.lr.tolist()]
    with pytest.raises(ValueError):
        stream.row(10)  # at the rebase point: the stream cannot know the rows before it


def test_stream_stops_where_a_bounded_schedule_ends_like_torch(client):
    """OneCycleLR has rows 0..total_steps; the stream serves all of them, then raises torch's ValueError."""
    opened = client.open(ONECYCLE, SGD_MOMENTUM)
    expected_lr, _ = torch_rows(ONECYCLE, SGD_MOMENTUM, 101)
    stream = WindowStream(Client(client.endpoint), opened, window=64)
    got = [stream.row(k)[0][0] for k in range(101)]
    np.testing.assert_allclose(got, expected_lr[:, 0], rtol=RTOL, atol=1e-15)
    with pytest.raises(ValueError) as error:
        stream.row(101)
    assert type(error.value) is ValueError  # torch's own type and text


def test_opened_says_where_the_schedule_ends(client):
    assert client.open(ONECYCLE, SGD_MOMENTUM).row_end == 101  # total_steps + 1
    assert client.open(STEP, TWO_GROUPS).row_end is None
    assert client.open(PLATEAU, TWO_GROUPS).row_end is None
    later = {"type": "SequentialLR", "schedulers": [STEP, {**ONECYCLE, "total_steps": 10}], "milestones": [7]}
    assert client.open(later, SGD_MOMENTUM).row_end == 18  # OneCycleLR's own 11 rows start at row 7


def test_stream_never_serves_rows_past_an_explicit_end(client):
    """With end=50 the last window is clamped: row 50 exists on the server but not in the stream."""
    opened = client.open(STEP, TWO_GROUPS)
    stream = WindowStream(Client(client.endpoint), opened, window=32, end=50)
    expected = client.window(opened, 0, 50).lr.tolist()
    assert [list(stream.row(k)[0]) for k in range(50)] == expected
    assert stream.lo + len(stream.lr_rows) == 50
    with pytest.raises(IndexError, match="past the end"):
        stream.row(50)


def test_windows_of_cyclic_schedules_carry_cycle_starts(client):
    cyclic = {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "step_size_down": 2}
    opened = client.open(cyclic, SGD_MOMENTUM)
    assert client.window(opened, 0, 12).cycle_starts == [0, 5, 10]
    assert client.window(opened, 6, 3).cycle_starts == []
    assert client.cycle_starts(opened, 4, 16) == [5, 10, 15]
    pieces = Client(client.endpoint)
    pieces.max_window = 4  # fetched in pieces: the starts of every piece, in order
    assert pieces.window(opened, 0, 12).cycle_starts == [0, 5, 10]
    plain = client.open(STEP, TWO_GROUPS)
    assert client.window(plain, 0, 5).cycle_starts is None
    with pytest.raises(TypeError, match="no cycle boundaries"):
        client.cycle_starts(plain, 0, 10)


# --------------------------------------------------------------------------
# Choosing a server; encoding


def test_resolve_client_takes_none_a_string_or_a_client(server, monkeypatch):
    monkeypatch.setenv("LRBRIDGE_ENDPOINT", server)
    monkeypatch.setattr(lrbridge.client, "_default", None)
    given = Client(server)
    assert resolve_client(given) is given
    assert resolve_client(server).endpoint == server
    assert resolve_client(None) is default_client()
    assert default_client().endpoint == server
    assert default_client().hello()["protocol"] == 2
    with pytest.raises(TypeError):
        resolve_client(5555)


def test_timeout_and_retries_default_from_the_environment(monkeypatch):
    monkeypatch.setenv("LRBRIDGE_TIMEOUT", "0.25")
    monkeypatch.setenv("LRBRIDGE_RETRIES", "5")
    client = Client("ipc:///nonexistent")
    assert (client.timeout, client.retries) == (0.25, 5)
    assert Client("ipc:///x", timeout=1, retries=1).timeout == 1.0


def test_embedded_server_starts_on_demand_and_stops_at_exit(server_cli, repo_root):
    """A fresh process with no LRBRIDGE_ENDPOINT starts its own server and leaves none behind."""
    script = (
        "import lrbridge, lrbridge.embedded as e\n"
        "c = lrbridge.default_client()\n"
        "print(c.endpoint, c.hello()['protocol'], e._shared.process.pid, flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LRBRIDGE_ENDPOINT"}
    env["PYTHONPATH"] = str(repo_root / "python_client")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    endpoint, protocol, pid = out.stdout.split()
    assert endpoint.startswith("ipc://") and protocol == "2"
    assert not _process_exists(int(pid))
    assert not os.path.exists(endpoint[len("ipc://"):])


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has exited, its parent just has not reaped it.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_request_encoding_is_a_plain_msgpack_map_and_numpy_scalars_go_as_floats():
    body = encode({"v": 1, "id": 7, "type": "open", "spec": STEP, "groups": [{"lr": np.float32(0.5)}]})
    assert decode(body) == {"v": 1, "id": 7, "type": "open", "spec": STEP, "groups": [{"lr": 0.5}]}
    assert body[0] == 0x85  # fixmap of 5 entries: no extension, no array
