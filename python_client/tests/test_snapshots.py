"""SnapshotSaver saves at the cycle ends the real server reports; SnapshotEnsemble
averages softmaxes (checked against a hand computation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lrbridge import lr_scheduler as B
from lrbridge import spec as S
from lrbridge.callbacks import SnapshotSaver
from lrbridge.ensemble import SnapshotEnsemble, ensemble_accuracy
from lrbridge.schedule import Schedule


def stamped_model():
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def run_and_stamp(scheduler, optimizer, model, saver, steps):
    """Each step writes the step number into the weights, so a snapshot says when it was taken."""
    for step in range(1, steps + 1):
        with torch.no_grad():
            model.weight.fill_(float(step))
        optimizer.step()
        scheduler.step()
        saver.step()


def stamped_run(build, steps, *, momentum=0.0, **saver_kwargs):
    """A stamped model trained ``steps`` steps under ``build(optimizer)``, a
    SnapshotSaver(**saver_kwargs) stepped with it: (model, scheduler, saver)."""
    model = stamped_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    scheduler = build(optimizer)
    saver = SnapshotSaver(scheduler, model, **saver_kwargs)
    run_and_stamp(scheduler, optimizer, model, saver, steps)
    return model, scheduler, saver


def saved_steps(saver):
    return [s.step for s in saver.snapshots], [float(sd["weight"][0, 0]) for sd in saver.state_dicts()]


def test_saves_at_each_cycle_end_and_keeps_the_newest(server):
    _, sched, saver = stamped_run(lambda opt: Schedule(opt, S.snapshot(total_steps=20, snapshots=4), server=server), 20, keep=3)
    # cycles of 5 steps: new cycles start at rows 5, 10, 15, 20 -> weights after steps 5..20
    steps, stamps = saved_steps(saver)
    assert steps == [10, 15, 20] and stamps == [10.0, 15.0, 20.0]
    assert saver.cycles_ended == 4
    # the lr restarts at the base lr exactly where the saver said a cycle ended
    assert sched.cycle_starts(0, 20) == [0, 5, 10, 15]


def test_sgdr_cycles_that_grow(server, tmp_path):
    _, _, saver = stamped_run(lambda opt: Schedule(opt, S.sgdr(t_0=3, t_mult=2), server=server), 25, momentum=0.9, keep=10, dir=tmp_path)
    steps, stamps = saved_steps(saver)
    assert steps == [3, 9, 21] and stamps == [3.0, 9.0, 21.0]  # T_i = 3, 6, 12
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.path.name for s in saver.snapshots]


def test_files_of_dropped_snapshots_are_deleted(server, tmp_path):
    _, _, saver = stamped_run(lambda opt: Schedule(opt, S.cycles(4, shape="linear"), server=server), 17, keep=2, dir=tmp_path)
    assert [s.step for s in saver.snapshots] == [12, 16]
    assert len(list(tmp_path.iterdir())) == 2
    last = saver.save_now()  # end of training, by hand
    assert last.step == 17 and len(saver) == 2


def test_a_schedule_without_cycles_is_refused(server):
    model = stamped_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = Schedule(optimizer, S.cosine(10), server=server)
    saver = SnapshotSaver(sched, model)
    optimizer.step()
    sched.step()
    with pytest.raises(TypeError, match="cycle"):
        saver.step()
    native = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(model.parameters(), lr=0.1), 3)
    with pytest.raises(TypeError, match="cycle_starts"):
        SnapshotSaver(native, model)


def test_drop_in_warm_restarts_snapshot_where_torch_restarts(server):
    """The drop-in CosineAnnealingWarmRestarts reports its restarts; they are where torch's lr jumps back up."""
    build = lambda opt: B.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001, server=server)  # noqa: E731
    _, sched, saver = stamped_run(build, 25, momentum=0.9, keep=10)
    steps, stamps = saved_steps(saver)
    assert steps == [3, 9, 21] and stamps == [3.0, 9.0, 21.0]  # T_i = 3, 6, 12

    torch_opt = torch.optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(torch_opt, T_0=3, T_mult=2, eta_min=0.001)
    restarts = []
    for step in range(1, 26):
        torch_opt.step()
        torch_sched.step()
        if torch_sched.T_cur == 0:
            restarts.append(step)
    assert restarts == [3, 9, 21] == sched.cycle_starts(1, 26)


def test_drop_in_cyclic_lr_reports_its_cycles(server):
    optimizer = torch.optim.SGD(stamped_model().parameters(), lr=0.1, momentum=0.9)
    sched = B.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=2, server=server)
    assert sched.cycle_starts(0, 20) == [0, 6, 12, 18]


# --------------------------------------------------------------------------
# the ensemble


def softmax_by_hand(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def linear_state(w, b):
    return {"weight": torch.tensor(w, dtype=torch.float64), "bias": torch.tensor(b, dtype=torch.float64)}


def test_ensemble_averages_softmaxes_of_the_last_m():
    states = [
        linear_state([[9.0, 9.0], [9.0, 9.0], [9.0, 9.0]], [0.0, 0.0, 0.0]),  # oldest: left out with m=2
        linear_state([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], [0.0, 0.1, -0.2]),
        linear_state([[-1.0, 2.0], [0.3, 0.0], [0.0, -1.0]], [0.2, 0.0, 0.0]),
    ]
    x = np.array([[1.0, 2.0], [-0.5, 0.25]])
    model = nn.Linear(2, 3).double()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    ens = SnapshotEnsemble(model, states, m=2)
    got = ens.predict_proba(torch.tensor(x)).numpy()

    p1 = softmax_by_hand(x @ states[1]["weight"].numpy().T + states[1]["bias"].numpy())
    p2 = softmax_by_hand(x @ states[2]["weight"].numpy().T + states[2]["bias"].numpy())
    np.testing.assert_allclose(got, (p1 + p2) / 2, rtol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    assert torch.equal(ens(torch.tensor(x)), ens.predict_proba(torch.tensor(x)))
    assert ens.predict(torch.tensor(x)).tolist() == list(((p1 + p2) / 2).argmax(axis=1))
    for k, v in model.state_dict().items():  # the template model is not touched
        assert torch.equal(v, before[k])

    only_last = SnapshotEnsemble(lambda: nn.Linear(2, 3).double(), states, m=1).predict_proba(torch.tensor(x)).numpy()
    np.testing.assert_allclose(only_last, p2, rtol=1e-12)


def test_ensemble_takes_a_saver_and_checks_m(server):
    model, _, saver = stamped_run(lambda opt: Schedule(opt, S.snapshot(total_steps=12, snapshots=3), server=server), 12, keep=3)
    ens = SnapshotEnsemble(model, saver)
    assert len(ens) == 3
    x = torch.ones(4, 3)
    y = torch.zeros(4, dtype=torch.long)
    acc = ensemble_accuracy(ens, [(x, y)])
    assert 0.0 <= acc <= 1.0 and math.isclose(acc * 4, round(acc * 4))
    with pytest.raises(ValueError):
        SnapshotEnsemble(model, saver, m=4)
    with pytest.raises(ValueError):
        SnapshotEnsemble(model, [], m=None)
