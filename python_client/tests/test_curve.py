"""CURVE on a real server: keys from `lrbridge keys`, real pyzmq clients, torch's values.

Servers here are started by hand (`serve --bind tcp://127.0.0.1:0 --curve-secret …`)
because the fixtures' servers bind ipc, which takes no keys.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import torch
import zmq
import zmq.auth

import lrbridge.lr_scheduler as B
from lrbridge import AuthError, Client
from lrbridge.embedded import node_executable
from lrbridge.protocol import open_message
from sched_helpers import PARITY, make_optimizer, mark_stepped, values

READY = "lrbridge serving on "


class Served:
    def __init__(self, cli: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [node_executable(), str(cli), "serve", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith(READY):
            self.process.kill()
            raise AssertionError(f"server did not start: {line!r} {self.process.stderr.read()}")
        self.endpoint = line[len(READY):].strip()

    def stop(self) -> str:
        """Stops the server; its stderr."""
        self.process.terminate()
        _out, err = self.process.communicate(timeout=30)
        return err


@pytest.fixture(scope="module")
def keys(server_cli, tmp_path_factory) -> Path:
    """server/, clients/ (alice: allowed), others/ (mallory: not allowed)."""
    root = tmp_path_factory.mktemp("keys")
    for sub, name in [("server", "server"), ("clients", "alice"), ("others", "mallory")]:
        subprocess.run([node_executable(), str(server_cli), "keys", str(root / sub), name], check=True, capture_output=True)
    # The server reads only *.key files from an allow-list directory; a secret next to them is ignored.
    return root


@pytest.fixture(scope="module")
def curve_server(server_cli, keys):
    served = Served(
        server_cli, "--bind", "tcp://127.0.0.1:0",
        "--curve-secret", str(keys / "server" / "server.key_secret"), "--allow", str(keys / "clients"),
    )
    yield served
    served.stop()


def curve_client(endpoint: str, keys: Path, who: str = "clients/alice", **kwargs) -> Client:
    return Client(endpoint, server_key=str(keys / "server" / "server.key"), client_key=str(keys / f"{who}.key_secret"), **kwargs)


def test_an_allowed_key_trains_with_torchs_values(curve_server, keys, monkeypatch):
    # From the environment, the server key as Z85 text: what a job script exports.
    server_public, _ = zmq.auth.load_certificate(str(keys / "server" / "server.key"))
    monkeypatch.setenv("LRBRIDGE_SERVER_KEY", server_public.decode())
    monkeypatch.setenv("LRBRIDGE_CLIENT_KEY", str(keys / "clients" / "alice.key_secret"))
    with Client(curve_server.endpoint) as client:
        opt, ref = make_optimizer("sgd"), make_optimizer("sgd")
        bridged = B.OneCycleLR(opt, max_lr=0.5, total_steps=300, server=client)
        native = torch.optim.lr_scheduler.OneCycleLR(ref, max_lr=0.5, total_steps=300)
        for step in range(300):
            PARITY.compare(values(ref), values(opt), f"step {step}")
            mark_stepped(opt)
            mark_stepped(ref)
            bridged.step()
            native.step()
        assert client.hello()["type"] == "hello"


def test_an_unknown_key_raises_auth_error_before_any_timeout(curve_server, keys):
    started = time.monotonic()
    with curve_client(curve_server.endpoint, keys, "others/mallory", timeout=60, retries=1) as client:
        with pytest.raises(AuthError) as caught:
            client.hello()
    assert time.monotonic() - started < 60  # the monitor, not the 60 s deadline
    assert caught.value.event == "HANDSHAKE_FAILED_AUTH"
    assert "allow-list" in str(caught.value)
    mallory, _ = zmq.auth.load_certificate(str(keys / "others" / "mallory.key"))
    assert mallory.decode() in str(caught.value)


def test_no_key_on_a_curve_endpoint_raises_auth_error(curve_server, monkeypatch):
    monkeypatch.delenv("LRBRIDGE_SERVER_KEY", raising=False)
    monkeypatch.delenv("LRBRIDGE_CLIENT_KEY", raising=False)
    with Client(curve_server.endpoint, timeout=60, retries=1) as client:
        with pytest.raises(AuthError) as caught:
            client.hello()
    assert caught.value.event.startswith("HANDSHAKE_FAILED")
    assert "LRBRIDGE_SERVER_KEY" in str(caught.value)


def test_the_wrong_server_key_raises_auth_error(curve_server, keys):
    wrong = str(keys / "clients" / "alice.key")  # a public key, but not the server's
    with Client(curve_server.endpoint, server_key=wrong, client_key=str(keys / "clients" / "alice.key_secret"),
                timeout=60, retries=1) as client:
        with pytest.raises(AuthError):
            client.hello()


def test_keys_against_a_server_without_curve_raise_auth_error(server_cli, keys):
    plain = Served(server_cli, "--bind", "tcp://127.0.0.1:0")
    try:
        with curve_client(plain.endpoint, keys, timeout=60, retries=1) as client:
            with pytest.raises(AuthError, match="does not use CURVE") as caught:
                client.hello()
        # A mechanism mismatch (_PROTOCOL), or the server hanging up first (_NO_DETAIL): either says why.
        assert caught.value.event in ("HANDSHAKE_FAILED_PROTOCOL", "HANDSHAKE_FAILED_NO_DETAIL")
    finally:
        plain.stop()


def test_a_client_key_without_a_server_key_is_a_configuration_error(keys):
    with pytest.raises(ValueError, match="LRBRIDGE_SERVER_KEY"):
        Client("tcp://127.0.0.1:9", server_key="", client_key=str(keys / "clients" / "alice.key_secret"))
    with pytest.raises(ValueError, match="holds no secret-key"):
        Client("tcp://127.0.0.1:9", server_key=str(keys / "server" / "server.key"), client_key=str(keys / "clients" / "alice.key"))


def test_a_non_loopback_bind_needs_curve_or_insecure(server_cli):
    refused = subprocess.run(
        [node_executable(), str(server_cli), "serve", "--bind", "tcp://0.0.0.0:0"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "refusing to serve tcp://0.0.0.0:0 without authentication" in refused.stderr
    assert refused.stdout == ""

    served = Served(server_cli, "--bind", "tcp://0.0.0.0:0", "--insecure")
    try:
        port = served.endpoint.rsplit(":", 1)[1]
        with Client(f"tcp://127.0.0.1:{port}") as client:
            assert client.hello()["type"] == "hello"
    finally:
        stderr = served.stop()
    assert "WARNING: --insecure" in stderr


def test_curve_needs_an_allow_list(server_cli, keys, tmp_path):
    args = ["serve", "--bind", "tcp://127.0.0.1:0", "--curve-secret", str(keys / "server" / "server.key_secret")]
    missing = subprocess.run([node_executable(), str(server_cli), *args], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "needs --allow DIR" in missing.stderr
    empty = subprocess.run([node_executable(), str(server_cli), *args, "--allow", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "holds no *.key files" in empty.stderr


EVIL = "box:1 \x1b]0;pwned\x07\x1b[2J\u202etxt.exe\\x"
EVIL_ESCAPED = "box:1 \\x1b]0;pwned\\x07\\x1b[2J\\u202etxt.exe\\\\x"
SPEC = {"type": "ExponentialLR", "gamma": 0.5}


def _open_as(client: Client, label: str, gamma: float) -> None:
    client.request(open_message({**SPEC, "gamma": gamma}, [{"lr": 0.1}], label))


def _clients_of(client: Client, gamma: float) -> list[str]:
    spec_hash = client.open({**SPEC, "gamma": gamma}, [{"lr": 0.1}]).spec_hash  # this process opens it too
    [entry] = [s for s in client.request({"type": "stats"})["schedules"] if s["spec_hash"] == spec_hash]
    return entry["clients"]


def test_labels_are_stored_escaped_and_shown_to_curve_peers(curve_server, keys):
    with curve_client(curve_server.endpoint, keys) as client:
        _open_as(client, EVIL, 0.25)
        labels = _clients_of(client, 0.25)
    assert EVIL_ESCAPED in labels
    assert not any(ch < " " or "\x7f" <= ch <= "\x9f" or ch == "\u202e" for label in labels for ch in label)


def test_stats_redacts_labels_for_unauthenticated_peers(server_cli, fresh_server):
    tcp = Served(server_cli, "--bind", "tcp://127.0.0.1:0")  # loopback, no CURVE: anyone on the machine
    try:
        with Client(tcp.endpoint) as client:
            _open_as(client, "box:42 secret_project.py", 0.125)
            _open_as(client, "box:43 other.py", 0.125)
            _open_as(client, "box:42 secret_project.py", 0.125)
            labels = _clients_of(client, 0.125)
    finally:
        tcp.stop()
    assert all(label.startswith("redacted:") for label in labels)
    assert not any("box" in label or "secret" in label or ".py" in label for label in labels)
    assert len(set(labels)) == len(labels) == 3  # one token per label: two openers and this process

    ipc = fresh_server()  # the file system decides who connects: labels in full
    with Client(ipc.endpoint) as client:
        _open_as(client, "box:42 secret_project.py", 0.125)
        assert "box:42 secret_project.py" in _clients_of(client, 0.125)


def test_top_reads_a_curve_server_with_the_same_keys(curve_server, keys, server_cli):
    import json

    with curve_client(curve_server.endpoint, keys) as client:
        _open_as(client, "gpu-3:77 top_test.py", 0.0625)
    env = {
        **os.environ,
        "LRBRIDGE_SERVER_KEY": str(keys / "server" / "server.key"),
        "LRBRIDGE_CLIENT_KEY": str(keys / "clients" / "alice.key_secret"),
    }
    out = subprocess.run(
        [node_executable(), str(server_cli), "top", "--json", "--connect", curve_server.endpoint],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )
    labels = [label for s in json.loads(out.stdout)["schedules"] for label in s["clients"]]
    assert "gpu-3:77 top_test.py" in labels  # an allowed key is an authenticated peer


def test_sighup_rereads_the_allow_list(server_cli, keys, tmp_path):
    import shutil
    import signal

    allow = tmp_path / "allow"
    allow.mkdir()
    shutil.copy(keys / "clients" / "alice.key", allow)
    served = Served(
        server_cli, "--bind", "tcp://127.0.0.1:0",
        "--curve-secret", str(keys / "server" / "server.key_secret"), "--allow", str(allow),
    )
    try:
        with curve_client(served.endpoint, keys, "others/mallory", timeout=60, retries=1) as client:
            with pytest.raises(AuthError):
                client.hello()
        shutil.copy(keys / "others" / "mallory.key", allow)
        (allow / "alice.key").unlink()  # revoked
        served.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while True:  # the reload is asynchronous to us: ask until it has happened
            try:
                with curve_client(served.endpoint, keys, "others/mallory", timeout=60, retries=1) as client:
                    assert client.hello()["type"] == "hello"
                break
            except AuthError:
                assert time.monotonic() < deadline, "SIGHUP did not reload the allow-list"
                time.sleep(0.1)
        with curve_client(served.endpoint, keys, timeout=60, retries=1) as client:
            with pytest.raises(AuthError):
                client.hello()
        assert served.process.poll() is None  # SIGHUP reloads, it does not stop the server
    finally:
        stderr = served.stop()
    assert "allow-lists reloaded: serving 1" in stderr


# --------------------------------------------------------------------------
# Replicas (failover transport): the same handshake watch on every replica


def _curve_replica(cli: Path, keys: Path, allow: str) -> Served:
    return Served(cli, "--bind", "tcp://127.0.0.1:0", "--curve-secret", str(keys / "server" / "server.key_secret"), "--allow", str(keys / allow))


def test_a_key_every_replica_refuses_raises_auth_error_at_once(server_cli, keys):
    replicas = [_curve_replica(server_cli, keys, "clients") for _ in range(3)]
    try:
        endpoints = [r.endpoint for r in replicas]
        started = time.monotonic()
        with curve_client(endpoints, keys, "others/mallory", timeout=30, retries=3) as client:
            with pytest.raises(AuthError) as caught:
                client.hello()
        assert time.monotonic() - started < 5  # the monitors, not 3 attempts of 30 s
        assert caught.value.event == "HANDSHAKE_FAILED_AUTH"
        assert caught.value.endpoint in endpoints
        # The drop-in says the same when it opens its schedule.
        with curve_client(endpoints, keys, "others/mallory", timeout=30, retries=3) as client:
            with pytest.raises(AuthError):
                B.StepLR(make_optimizer("sgd"), step_size=3, server=client)
    finally:
        for r in replicas:
            r.stop()


def test_a_replica_that_refuses_the_key_is_passed_over_for_one_that_admits_it(server_cli, keys):
    refusing, admitting = _curve_replica(server_cli, keys, "others"), _curve_replica(server_cli, keys, "clients")
    try:
        with curve_client([refusing.endpoint, admitting.endpoint], keys, timeout=30, retries=3) as client:
            client._transport.preferred = 0  # the refusing one first
            started = time.monotonic()
            opt, ref = make_optimizer("sgd"), make_optimizer("sgd")
            bridged = B.StepLR(opt, step_size=3, gamma=0.5, server=client)
            native = torch.optim.lr_scheduler.StepLR(ref, step_size=3, gamma=0.5)
            for step in range(20):
                mark_stepped(opt)
                mark_stepped(ref)
                bridged.step()
                native.step()
                PARITY.compare(values(ref), values(opt), f"step {step}")
            assert time.monotonic() - started < 10
            assert client._transport.preferred == 1
    finally:
        refusing.stop()
        admitting.stop()
