"""The registry from the client's side, on an in-process registry (fake_registry.py):
which messages go where, what a checkpoint pins, and what a resume does when
the ref has moved."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import plain_optim
import torch
from fake_registry import FakeRegistry

import lrbridge
from lrbridge import registry
from lrbridge.errors import (
    AliasConflict,
    BadRef,
    Forbidden,
    LRBridgeError,
    ProtocolError,
    ScheduleChanged,
    StoreUnavailable,
    UnknownRef,
    UnpinnedRef,
)
from lrbridge.lr_scheduler import StepLR, from_ref
from lrbridge.protocol import epoch_message, error_from_reply, metric_message, open_message, window_message

pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")

V1 = {"type": "StepLR", "step_size": 3, "gamma": 0.5}
V2 = {"type": "StepLR", "step_size": 5, "gamma": 0.5}


def sgd(lr: float = 0.1) -> plain_optim.SGD:
    return plain_optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lr_of(opt) -> float:
    return float(opt.param_groups[0]["lr"])


@pytest.fixture
def reg():
    fake = FakeRegistry()
    fake.publish("team/x", V1)
    fake.move("team/x", "prod", 1)
    return fake


def train(sched, opt, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        sched.step()
        seen.append(lr_of(opt))
    return seen


def test_registry_error_codes_raise_their_typed_errors():
    for code, cls in [("BAD_REF", BadRef), ("UNKNOWN_REF", UnknownRef), ("ALIAS_CONFLICT", AliasConflict),
                      ("FORBIDDEN", Forbidden), ("STORE_UNAVAILABLE", StoreUnavailable)]:
        error = error_from_reply({"type": "error", "code": code, "message": "team/x@nope: no alias", "path": "ref"})
        assert type(error) is cls and isinstance(error, ProtocolError) and isinstance(error, LRBridgeError)
        assert error.code == code and error.path == "ref" and "team/x@nope" in str(error)
    assert isinstance(error_from_reply({"code": "BAD_REF", "message": "m"}), ValueError)


def test_parse_ref_splits_for_messages_and_never_raises():
    r = registry.parse_ref("team/cosine@prod")
    assert (r.namespace, r.name, r.selector, r.full_name, r.unpinned) == ("team", "cosine", "prod", "team/cosine", False)
    assert registry.parse_ref("team/cosine").unpinned and registry.parse_ref("team/cosine@latest").unpinned
    assert not registry.parse_ref("team/cosine@3").unpinned
    assert registry.parse_ref("!!bad@@").text == "!!bad@@"
    assert registry.is_ref("team/x@1") and not registry.is_ref(' {"type": "StepLR"}') and not registry.is_ref({"type": "x"})


def test_run_ids_go_on_the_requests_a_replay_needs():
    assert "run" not in window_message("h", 0, 4)
    assert window_message("h", 0, 4, None, "r1")["run"] == "r1"  # how far the run got
    assert window_message("h", 0, 4, {"step": 2, "lr": [0.1]}, "r1")["run"] == "r1"
    assert epoch_message("h", [1.0], None, "r1")["run"] == "r1"
    assert metric_message("h", {}, 1.0, "r1")["run"] == "r1"
    msg = open_message(None, [{"lr": 0.1}], None, -1, ref="team/x@prod", run={"id": "r1"})
    assert list(msg) == ["type", "ref", "groups", "run"]


def test_schedule_opens_the_ref_with_the_run_and_pins_it(reg, monkeypatch):
    monkeypatch.setenv("LRBRIDGE_RUN_ID", "run-a")
    opt = sgd()
    sched = lrbridge.Schedule(opt, "team/x@prod", server=reg.client(), run_name="baseline")
    opens = [r for r in reg.requests if r["type"] == "open"]
    assert opens[0]["ref"] == "team/x@prod" and "spec" not in opens[0] and "run" not in opens[0]
    assert reg.uses == []  # a resume would load a checkpoint now: the use waits for the first step
    n = len(reg.requests)
    np.testing.assert_allclose(train(sched, opt, 7), [0.1 * 0.5 ** (k // 3) for k in range(1, 8)])
    assert [r["type"] for r in reg.requests[n:]].count("open") == 1
    (use,) = reg.uses
    assert (use["ref"], use["version"], use["step"]) == ("team/x@1", 1, 0)
    assert use["run"]["id"] == "run-a" and use["run"]["name"] == "baseline" and use["run"]["pid"] > 0
    pin = sched.state_dict()["_registry"]
    assert (pin["ref"], pin["name"], pin["version"]) == ("team/x@prod", "team/x", 1)
    assert pin["canonical"] == V1 and pin["engine"] == "lrbridge-ts/0.1.0" and pin["run"] == "run-a"
    assert pin["digest"]["rows"] == registry.DIGEST_ROWS and len(pin["digest"]["sha256"]) == 64
    assert sched.ref == "team/x@prod" and sched.spec == V1
    pickle.dumps(sched.state_dict())


def test_a_bare_name_warns_unpinned_and_records_the_version(reg):
    reg.publish("team/x", V2)
    with pytest.warns(UnpinnedRef, match=r"team/x is unpinned .*resolved to team/x@2"):
        sched = lrbridge.Schedule(sgd(), "team/x", server=reg.client())
    assert sched.resolved["version"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpinnedRef)
        lrbridge.Schedule(sgd(), "team/x@1", server=reg.client())


def test_an_unknown_ref_is_a_typed_error(reg):
    with pytest.raises(UnknownRef, match="team/x@staging"):
        lrbridge.Schedule(sgd(), "team/x@staging", server=reg.client())


def checkpoint(reg, steps: int = 5):
    opt = sgd()
    sched = lrbridge.Schedule(opt, "team/x@prod", server=reg.client())
    train(sched, opt, steps)
    return pickle.loads(pickle.dumps(sched.state_dict())), opt.state_dict()


def resume(reg, state, opt_state, **kw):
    opt = sgd()
    opt.load_state_dict(opt_state)
    sched = lrbridge.Schedule(opt, "team/x@prod", server=reg.client(), **kw)
    return opt, sched


def test_a_moved_ref_refuses_to_resume_and_says_what_moved(reg):
    state, opt_state = checkpoint(reg)
    reg.move("team/x", "prod", reg.publish("team/x", V2))
    opt, sched = resume(reg, state, opt_state)
    before = dict(sched.__dict__)
    with pytest.raises(ScheduleChanged) as info:
        sched.load_state_dict(state)
    text = str(info.value)
    assert text.startswith("team/x@prod now → v2, checkpoint pinned v1")
    assert "step_size: 3 → 5" in text and "values part at step 3" in text and 'on_change="checkpoint"' in text
    assert info.value.pinned["version"] == 1 and info.value.current["version"] == 2
    assert info.value.diff["first_step"] == 3
    assert sched.__dict__.keys() == before.keys() and sched.last_epoch == before["last_epoch"]  # untouched


def test_on_change_checkpoint_keeps_the_pinned_version_without_the_registry(reg):
    state, opt_state = checkpoint(reg)
    reg.move("team/x", "prod", reg.publish("team/x", V2))
    opt, sched = resume(reg, state, opt_state, on_change="checkpoint")
    n = len(reg.requests)
    sched.load_state_dict(state)
    reopen = [r for r in reg.requests[n:] if r["type"] == "open"][0]
    assert reopen["ref"] == "team/x@1" and reopen["run"]["step"] == 6
    np.testing.assert_allclose(train(sched, opt, 6), [0.1 * 0.5 ** (k // 3) for k in range(6, 12)])
    assert sched.resolved["version"] == 1 and sched._on_change == "checkpoint"


def test_on_change_current_switches_at_the_resume_step_and_records_it(reg):
    state, opt_state = checkpoint(reg)
    reg.move("team/x", "prod", reg.publish("team/x", V2))
    opt, sched = resume(reg, state, opt_state, on_change="current")
    sched.load_state_dict(state)
    assert reg.uses[-1]["version"] == 2 and reg.uses[-1]["step"] == 6 and reg.uses[-1]["run"]["step"] == 6
    np.testing.assert_allclose(train(sched, opt, 6), [0.1 * 0.5 ** (k // 5) for k in range(6, 12)])
    pin = sched.state_dict()["_registry"]
    assert pin["version"] == 2 and pin["switches"] == [{"step": 6, "from": 1, "to": 2}]


def test_an_unmoved_ref_resumes_and_records_the_resume_step(reg):
    state, opt_state = checkpoint(reg)
    opt, sched = resume(reg, state, opt_state)
    sched.load_state_dict(state)
    assert reg.uses[-1]["step"] == 6 and reg.uses[-1]["version"] == 1
    np.testing.assert_allclose(train(sched, opt, 3), [0.1 * 0.5 ** (k // 3) for k in range(6, 9)])


def test_a_different_engine_with_other_values_warns_on_resume(reg):
    state, opt_state = checkpoint(reg)
    reg.server, reg.rows_scale = "lrbridge-ts/9.9.9", 2.0
    opt, sched = resume(reg, state, opt_state)
    with pytest.warns(UserWarning, match="engine lrbridge-ts/9.9.9 computes its first 64 rows differently"):
        sched.load_state_dict(state)


def test_another_engine_with_the_same_values_resumes_quietly(reg):
    state, opt_state = checkpoint(reg)
    reg.server = "lrbridge-ts/9.9.9"
    opt, sched = resume(reg, state, opt_state)
    n = len(reg.requests)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.load_state_dict(state)
    # the digest was recomputed with a window request and matched the one taken from the stream
    assert "window" in [r["type"] for r in reg.requests[n:]]


def test_the_pin_digest_comes_from_the_first_window_without_a_request_of_its_own(reg):
    sched = lrbridge.Schedule(sgd(), "team/x@prod", server=reg.client())
    windows = [(r["start"], r["count"]) for r in reg.requests if r["type"] == "window"]
    assert windows[0][0] == 0 and windows[0][1] > registry.DIGEST_ROWS  # the stream's, then its prefetch
    assert (0, registry.DIGEST_ROWS) not in windows
    fresh = registry.rows_digest(reg.client(), sched._opened)
    assert sched.state_dict()["_registry"]["digest"] == fresh


def test_from_ref_builds_the_drop_in_class_and_the_checkpoint_wins(reg):
    opt = sgd()
    sched = from_ref(opt, "team/x@prod", server=reg.client())
    assert type(sched) is StepLR and isinstance(sched, torch.optim.lr_scheduler.StepLR)
    assert (sched.step_size, sched.gamma) == (3, 0.5)
    assert [r for r in reg.requests if r["type"] == "open"][-1]["ref"] == "team/x@prod"
    train(sched, opt, 4)
    state = sched.state_dict()
    assert state["_registry"]["version"] == 1
    reg.move("team/x", "prod", reg.publish("team/x", V2))
    opt2 = sgd()
    opt2.load_state_dict(opt.state_dict())
    resumed = from_ref(opt2, "team/x@prod", server=reg.client())
    with pytest.warns(UserWarning, match=r"checkpoint pinned team/x@prod = team/x v1; team/x@prod now resolves to v2"):
        resumed.load_state_dict(state)
    np.testing.assert_allclose(train(resumed, opt2, 4), [0.1 * 0.5 ** (k // 3) for k in range(5, 9)])
    assert (reg.uses[-1]["ref"], reg.uses[-1]["version"], reg.uses[-1]["step"]) == ("team/x@1", 1, 5)


def test_publish_and_alias_go_to_the_admin_endpoint(reg):
    serving = FakeRegistry(admin=False)
    with pytest.raises(Forbidden):
        registry.publish("team/x", V2, admin=serving.client())
    assert serving.versions == {}
    v = registry.publish("team/x", V2, message="slower decay", admin=reg.client())
    assert (v.version, v.created) == (2, True)
    assert reg.requests[-1]["message"] == "slower decay" and reg.requests[-1]["author"]
    assert registry.publish("team/x", dict(V2), admin=reg.client()).created is False
    moved = registry.alias("team/x", "prod", 2, expect=1, why="rollout", admin=reg.client())
    assert (moved["from"], moved["to"]) == (1, 2)
    assert reg.requests[-1]["expect"] == 1 and reg.requests[-1]["why"] == "rollout" and reg.requests[-1]["who"]
    with pytest.raises(AliasConflict, match="points at 2"):
        registry.alias("team/x", "prod", 1, expect=1, admin=reg.client())
    registry.alias("team/x", "canary", 1, expect=None, admin=reg.client())
    assert "expect" in reg.requests[-1] and reg.requests[-1]["expect"] is None
    registry.alias("team/x", "canary", 2, admin=reg.client())
    assert "expect" not in reg.requests[-1]


def test_resolve_and_diff_read_the_serving_endpoint(reg):
    reg.publish("team/x", V2)
    v = registry.resolve("team/x@prod", server=reg.client())
    assert (v.name, v.version, v.canonical, str(v)) == ("team/x", 1, V1, "team/x@1")
    d = registry.diff("team/x@1", "team/x@2", 20, server=reg.client())
    assert d["first_step"] == 3 and d["paths"] == [{"path": "step_size", "a": 3, "b": 5}]


def test_a_resume_under_the_same_run_id_records_only_the_resume(reg, monkeypatch):
    monkeypatch.setenv("LRBRIDGE_RUN_ID", "job-7")
    state, opt_state = checkpoint(reg)
    reg.move("team/x", "prod", reg.publish("team/x", V2))
    opt, sched = resume(reg, state, opt_state, on_change="checkpoint")
    sched.load_state_dict(state)
    train(sched, opt, 3)
    assert [(u["run"]["id"], u["spec_hash"][:8], u["step"]) for u in reg.uses] == [
        ("job-7", state["_registry"]["spec_hash"][:8], 0),
        ("job-7", state["_registry"]["spec_hash"][:8], 6),
    ]


def test_on_change_checkpoint_resumes_from_the_canonical_spec_when_the_store_is_down(reg):
    state, opt_state = checkpoint(reg)
    reg.move("team/x", "prod", reg.publish("team/x", V2))
    opt, sched = resume(reg, state, opt_state, on_change="checkpoint")
    reg.store_down = True
    n = len(reg.requests)
    sched.load_state_dict(state)
    opens = [r for r in reg.requests[n:] if r["type"] == "open"]
    assert opens[-1]["spec"] == V1 and "ref" not in opens[-1] and opens[-1]["run"]["step"] == 6
    np.testing.assert_allclose(train(sched, opt, 3), [0.1 * 0.5 ** (k // 3) for k in range(6, 9)])
