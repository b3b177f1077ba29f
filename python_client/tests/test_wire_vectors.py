"""proto/vectors/wire/*.json: the Python side of the byte-level protocol examples.

Each vector (written by ts/scripts/gen-wire-vectors.ts) has ``request`` /
``request_hex`` and ``reply`` / ``reply_hex``; the JSON forms write a `bin` of
float64 as ``{"$bin_f64": [...]}`` and non-finite floats as ``{"$float": "nan"}``.
Checked here:
- msgpack-python decodes every ``*_hex`` to its JSON form;
- the client's own message builders encode every request byte for byte;
- the client's reply parsers read every reply (errors → the right exception);
- the real server, sent ``setup`` then ``request_hex`` over a DEALER, answers ``reply_hex`` byte for byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from lrbridge import BadRequest, ProtocolError, SpecError, registry
from lrbridge.errors import REGISTRY_ERRORS
from lrbridge.protocol import (
    PROTOCOL_VERSION,
    decode,
    encode,
    epoch_message,
    error_from_reply,
    hello_message,
    metric_from_reply,
    metric_message,
    open_message,
    opened_from_reply,
    request_body,
    window_from_reply,
    window_message,
)
from lrbridge.errors import ReplayPending, UnknownHash
from lrbridge.heartbeat import heartbeat_message

WIRE_DIR = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "wire"
VECTOR_FILES = sorted(WIRE_DIR.glob("*.json"))
# Answered by a server with a fresh store and a fixed clock (ts/test/registry_wire.test.ts):
# checked here for their bytes and how the client builds and reads them.
REGISTRY_VECTOR_FILES = sorted((WIRE_DIR / "registry").glob("*.json"))
NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def test_the_wire_vectors_exist():
    names = {p.stem for p in VECTOR_FILES}
    assert {"hello", "open", "window", "rebase", "epoch", "metric", "error_SPEC_INVALID", "error_UNKNOWN_HASH"} <= names


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _is_marker(value, key: str) -> bool:
    return isinstance(value, dict) and len(value) == 1 and key in value


def _number(value):
    return NON_FINITE[value["$float"]] if _is_marker(value, "$float") else value


def from_jsonable(value):
    """JSON form → what msgpack-python decodes (bins as bytes)."""
    if _is_marker(value, "$float"):
        return _number(value)
    if _is_marker(value, "$bin_f64"):
        return np.array([_number(x) for x in value["$bin_f64"]], dtype="<f8").tobytes()
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: from_jsonable(v) for k, v in value.items()}
    return value


def same(a, b) -> bool:
    """Equality where NaN equals NaN and an int equals the same-valued float (msgpackr sends 1.0 as 1)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and (type(a) is type(b) or {type(a), type(b)} <= {int, float})


def _vectors(wanted=lambda vector: True, files=VECTOR_FILES):
    """Vectors as test params, those ``wanted`` only (e.g. the ones that have a request map)."""
    return [pytest.param(v, id=p.stem) for p, v in ((p, _load(p)) for p in files) if wanted(v)]


ALL_FILES = VECTOR_FILES + REGISTRY_VECTOR_FILES


def _has_reply(vector) -> bool:
    return bool(vector.get("reply_hex"))


def _has_encodable_request(vector) -> bool:
    # A null `request` with a hex is raw garbage bytes: nothing an encoder makes.
    return bool(vector.get("request_hex")) and vector.get("request") is not None


def _has_any_request(vector) -> bool:
    return _has_reply(vector) and bool(vector.get("request_hex") or vector.get("request_size"))


@pytest.mark.parametrize("vector", _vectors(files=ALL_FILES))
def test_hex_decodes_to_the_json_form(vector):
    for side in ("request", "reply"):
        hex_bytes = vector.get(f"{side}_hex")
        if hex_bytes is None or vector.get(side) is None:
            continue
        decoded = msgpack.unpackb(bytes.fromhex(hex_bytes), raw=False)
        assert same(decoded, from_jsonable(vector[side])), side


def _client_message(request: dict) -> dict:
    """The message the client's own builder makes for this request's fields."""
    kind = request["type"]
    if kind == "hello":
        return hello_message()
    if kind == "open":
        return open_message(
            request.get("spec"), request["groups"], None, request.get("last_epoch", -1),
            ref=request.get("ref"), run=request.get("run"), params=request.get("params"),
        )
    if kind in ("window", "rebase"):
        return window_message(request["hash"], request["start"], request["count"], request.get("origin"), request.get("run"))
    if kind == "epoch":
        return epoch_message(request["hash"], request["epochs"], request.get("lr"), request.get("run"))
    if kind == "metric":
        return metric_message(request["hash"], request["state"], request["metric"], request.get("run"))
    if kind == "heartbeat":
        return heartbeat_message(
            request["run"], request["hash"], request["spec_hash"], request["step"], request["lr"],
            request["momentum"], request["total"], request["state"],
        )
    if kind in REGISTRY_BUILDERS:
        return REGISTRY_BUILDERS[kind](request)
    return {k: v for k, v in request.items() if k not in ("v", "id")}


REGISTRY_BUILDERS = {
    "resolve": lambda r: registry.resolve_message(r["ref"]),
    "publish": lambda r: registry.publish_message(r["name"], r["spec"], r.get("message"), r.get("author"), r.get("params")),
    "alias": lambda r: registry.alias_message(
        r["name"], r["alias"], r["version"], r["expect"] if "expect" in r else registry._UNSET, r.get("who"), r.get("why")
    ),
    "history": lambda r: registry.history_message(r["name"], r.get("at")),
    "diff": lambda r: registry.diff_message(r["a"], r["b"], r["steps"], r.get("groups")),
    "runs": lambda r: registry.runs_message(r.get("ref"), r.get("run")),
}
CLIENT_TYPES = {"hello", "open", "window", "rebase", "epoch", "metric", "heartbeat", *REGISTRY_BUILDERS}


@pytest.mark.parametrize("vector", _vectors(_has_encodable_request, ALL_FILES))
def test_requests_encode_byte_for_byte(vector):
    request = from_jsonable(vector["request"])
    expected = bytes.fromhex(vector["request_hex"])
    assert encode(request) == expected
    if isinstance(request, dict) and request.get("v") == PROTOCOL_VERSION and request.get("type") in CLIENT_TYPES and isinstance(request.get("id"), int):
        # What Client.request actually sends for these fields.
        assert request_body(_client_message(request), request["id"]) == expected


@pytest.mark.parametrize("vector", _vectors(_has_reply, ALL_FILES))
def test_replies_parse(vector):
    reply = decode(bytes.fromhex(vector["reply_hex"]))
    kind = reply["type"]
    if kind == "hello":
        assert reply["protocol"] == PROTOCOL_VERSION and reply["max_window"] >= 1
    elif kind == "opened":
        opened = opened_from_reply(reply, {}, [])
        assert len(opened.hash) == 64 and opened.groups >= 1
        if opened.kind == "metric":
            assert all(isinstance(v, float) for v in opened.lr)
        if "resolved" in reply:
            assert opened.resolved["version"] >= 1
            if "params" not in (vector.get("request") or {}):
                assert opened.resolved["spec_hash"] == opened.spec_hash
            else:  # a module version's params are laid over it: another spec
                assert opened.resolved["spec_hash"] != opened.spec_hash
    elif kind in ("resolved", "published", "aliased", "history", "diff", "runs"):
        fields = registry._reply(reply, kind)
        assert fields and "v" not in fields and "type" not in fields
    elif kind == "window":
        window = window_from_reply(reply)
        values = from_jsonable(vector["reply"])["lr"]
        assert window.lr.shape == (reply["count"], reply["groups"])
        np.testing.assert_array_equal(window.lr.ravel(), np.frombuffer(values, "<f8"))
        assert (window.momentum is None) == (reply.get("momentum") is None)
        if "stop" in reply:
            assert window.stop["row"] == reply["start"] + reply["count"] and window.stop["py"]["type"]
        if "attrs" in reply:
            assert set(window.attrs) == set(reply["attrs"]) and all(len(a) == reply["count"] for a in window.attrs.values())
    elif kind == "stats":
        assert reply["requests"] >= 1 and all(len(s["hash"]) == 64 for s in reply["schedules"])
    elif kind == "metric":
        result = metric_from_reply(reply)
        assert all(isinstance(v, float) for v in result["lr"]) and isinstance(result["state"], dict)
    else:
        assert kind == "error"
        error = error_from_reply(reply)
        if reply["code"] == "REFUSED":
            # torch's exception, type and text.
            assert type(error).__name__ == reply["py"]["type"] and str(error) == reply["py"]["message"]
            return
        expected_class = {
            "SPEC_INVALID": SpecError,
            "UNKNOWN_HASH": UnknownHash,
            "BAD_REQUEST": BadRequest,
            "REPLAY_PENDING": ReplayPending,
            **REGISTRY_ERRORS,
        }.get(
            reply["code"], ProtocolError
        )
        assert isinstance(error, expected_class)
        if isinstance(error, SpecError):
            assert error.path == reply["path"] and isinstance(error, ValueError)
            assert str(error) == reply["py"]["message"]
        else:
            assert error.code == reply["code"]


# --------------------------------------------------------------------------
# The real server gives the vectors' bytes



def _exchange(dealer: zmq.Socket, body: bytes) -> bytes:
    dealer.send(body)
    return dealer.recv()


@pytest.mark.parametrize("vector", _vectors(_has_any_request))
def test_the_server_answers_the_vector_bytes(vector, dealer):
    if vector.get("request_hex"):
        request = bytes.fromhex(vector["request_hex"])
    else:
        request = bytes(vector["request_size"])  # that many zero bytes
    for setup in vector.get("setup", []):
        assert decode(_exchange(dealer, encode(from_jsonable(setup))))["type"] != "error"
    reply = _exchange(dealer, request)
    if vector["name"] == "stats":
        # The real server's clock and counters are its own: same fields, not the same bytes.
        assert set(decode(reply)) == set(vector["reply"])
        return
    assert reply.hex() == vector["reply_hex"]


def test_the_server_sends_no_reply_to_a_heartbeat_and_lists_its_run(dealer):
    [vector] = [v for v in map(_load, VECTOR_FILES) if v["name"] == "heartbeat"]
    for setup in vector["setup"]:
        assert decode(_exchange(dealer, encode(from_jsonable(setup))))["type"] != "error"
    dealer.send(bytes.fromhex(vector["request_hex"]))
    # The next reply on this socket is the stats one: nothing came back for the heartbeat.
    stats = decode(_exchange(dealer, encode({"v": 2, "id": 99, "type": "stats"})))
    assert stats["id"] == 99
    [run] = [r for r in stats["runs"] if r["id"] == vector["request"]["run"]["id"]]
    assert (run["name"], run["step"], run["lr"], run["state"]) == ("train <digits>", 7, [0.025], "running")
