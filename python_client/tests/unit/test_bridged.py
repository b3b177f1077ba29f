"""Bridged and WindowStream on an in-process server (fake_server.py): no node,
no sockets, milliseconds. What the client does with rows: which requests it
sends, where it writes lr and momentum, how it resumes and re-opens."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import plain_optim
import torch
from fake_server import FakeServer

from lrbridge.lr_scheduler import StepLR
from lrbridge.prefetch import WindowStream

ROWS = 40
# The steps here skip optimizer.step() (torch's first one costs seconds of imports); torch warns.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")


def step_rows(lr0: float, groups: int = 1) -> np.ndarray:
    """StepLR(step_size=3, gamma=0.5) rows for group lrs lr0, lr0/2, ..."""
    k = np.arange(ROWS)[:, None]
    return (lr0 / 2.0 ** np.arange(groups))[None, :] * 0.5 ** (k // 3)


def sgd(lrs, tensor: bool = False) -> plain_optim.SGD:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": torch.tensor(lr, dtype=torch.float64) if tensor else lr} for lr in lrs]
    return plain_optim.SGD(groups, lr=lrs[0], momentum=0.9)


def lrs_of(opt) -> list[float]:
    return [float(g["lr"]) for g in opt.param_groups]


@pytest.mark.parametrize("groups", [1, 3])
def test_steps_write_the_rows_without_a_request_per_step(groups):
    fake = FakeServer(step_rows(0.1, groups))
    opt = sgd(list(step_rows(0.1, groups)[0]))
    sched = StepLR(opt, step_size=3, gamma=0.5, server=fake.client())
    seen = [lrs_of(opt)]
    for _ in range(ROWS - 1):
        sched.step()
        seen.append(lrs_of(opt))
    np.testing.assert_array_equal(np.array(seen), fake.lr)
    assert sched.get_last_lr() == list(fake.lr[-1])
    # one open, and windows: never one request per step
    assert fake.types().count("open") == 1
    assert len(fake.requests) <= 3, fake.types()


def test_tensor_lrs_are_filled_in_place_and_last_lr_is_a_clone():
    fake = FakeServer(step_rows(0.1))
    opt = sgd([0.1], tensor=True)
    lr = opt.param_groups[0]["lr"]
    sched = StepLR(opt, step_size=3, gamma=0.5, server=fake.client())
    for k in range(1, 10):
        sched.step()
        assert opt.param_groups[0]["lr"] is lr
        assert float(lr) == fake.lr[k, 0]
        last = sched.get_last_lr()[0]
        assert isinstance(last, torch.Tensor) and last is not lr and float(last) == float(lr)


def test_momentum_goes_to_betas0_and_keeps_beta2():
    mom = np.linspace(0.95, 0.85, ROWS)
    fake = FakeServer(step_rows(0.1), mom, momentum_key="betas")
    opt = plain_optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1, betas=(0.95, 0.98))
    sched = StepLR(opt, step_size=3, gamma=0.5, server=fake.client())
    for k in range(1, 8):
        sched.step()
        assert opt.param_groups[0]["betas"] == (mom[k], 0.98)
        assert "momentum" not in opt.param_groups[0]


def test_momentum_key_momentum_for_sgd_groups():
    mom = np.linspace(0.95, 0.85, ROWS * 2).reshape(ROWS, 2)
    fake = FakeServer(step_rows(0.1, 2), mom, momentum_key="momentum")
    opt = sgd([0.1, 0.05])
    sched = StepLR(opt, step_size=3, gamma=0.5, server=fake.client())
    for k in range(1, 8):
        sched.step()
        assert [g["momentum"] for g in opt.param_groups] == list(mom[k])


def test_a_hand_edited_lr_rebases_a_chainable_schedule():
    fake = FakeServer(step_rows(0.1), chainable=True)
    opt = sgd([0.1])
    sched = StepLR(opt, step_size=3, gamma=0.5, server=fake.client())
    for _ in range(4):
        sched.step()
    opt.param_groups[0]["lr"] = 1.0  # row 4 was 0.05
    sched.step()
    assert "rebase" in fake.types()
    assert lrs_of(opt) == [1.0 * fake.lr[5, 0] / fake.lr[4, 0]]


def test_resume_from_a_state_dict_continues_at_the_next_row():
    fake = FakeServer(step_rows(0.1))
    opt = sgd([0.1])
    sched = StepLR(opt, step_size=3, gamma=0.5, server=fake.client())
    for _ in range(7):
        sched.step()
    saved = pickle.loads(pickle.dumps(sched.state_dict()))
    again_opt = sgd([0.1])
    again = StepLR(again_opt, step_size=3, gamma=0.5, server=fake.client())
    again.load_state_dict(saved)
    for k in range(8, 12):
        again.step()
        assert lrs_of(again_opt) == [fake.lr[k, 0]]


def test_a_forgotten_handle_is_opened_again():
    fake = FakeServer(step_rows(0.1))
    opt = sgd([0.1])
    sched = StepLR(opt, step_size=3, gamma=0.5, server=fake.client())
    fake.forget()
    sched.load_state_dict(sched.state_dict())  # drops the window: the next step asks again
    sched.step()
    assert lrs_of(opt) == [fake.lr[1, 0]]
    assert fake.types().count("open") == 2


# --------------------------------------------------------------------------
# WindowStream alone


def opened_stream(fake: FakeServer, window: int, start: int = 0) -> WindowStream:
    client = fake.client()
    opened = client.open({"type": "StepLR", "step_size": 3, "gamma": 0.5}, [{"lr": 0.1}] * fake.lr.shape[1])
    return WindowStream(client, opened, start, window=window)


def test_stream_crosses_windows_on_prefetched_rows():
    fake = FakeServer(step_rows(0.1, 2))
    stream = opened_stream(fake, window=4)
    rows = [stream.row(k)[0] for k in range(ROWS)]
    np.testing.assert_array_equal(np.array(rows), fake.lr)
    # one request per window of 4 rows, none past the last row
    assert fake.types().count("window") == ROWS // 4


def test_stream_asks_again_when_a_prefetch_is_lost():
    fake = FakeServer(step_rows(0.1))
    stream = opened_stream(fake, window=4)
    fake.drop_prefetch = True
    rows = [stream.row(k)[0][0] for k in range(12)]
    assert rows == list(fake.lr[:12, 0])


def test_stream_seek_starts_over_at_the_row():
    fake = FakeServer(step_rows(0.1))
    stream = opened_stream(fake, window=4)
    assert stream.row(1)[0] == (fake.lr[1, 0],)
    stream.seek(30)
    assert stream.n == 0  # the buffered rows are gone
    assert stream.row(31)[0] == (fake.lr[31, 0],)
