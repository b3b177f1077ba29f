"""Failover over several replicas (lrbridge.failover) against in-process fake
replicas (fake_replicas.py): which replica a request goes to, when it is sent
again, which replies are taken, and when the client gives up. The fakes answer
over real ipc sockets, and the silent ones cost real timeouts (test_failover.py
runs real servers)."""

from __future__ import annotations

import threading
import time

import msgpack
import pytest
from fake_replicas import HASH, FakeReplicas, wait_connected

from lrbridge import Client, ServerUnavailable
from lrbridge.failover import FreelanceChannel, FreelanceTransport, request_id
from lrbridge.protocol import request_body, window_message
from lrbridge.transport import ZmqTransport, connect

SPEC = {"type": "StepLR", "step_size": 3}
GROUPS = [{"lr": 1.0}]


@pytest.fixture
def replicas():
    fakes = FakeReplicas(3)
    yield fakes
    fakes.close()


def client_on(fakes: FakeReplicas, *, first: int = 0, timeout: float = 1.0, retries: int = 3) -> Client:
    """A client connected to every fake, sending to replica ``first`` first."""
    client = Client(fakes.endpoints, timeout=timeout, retries=retries)
    transport = client._transport
    assert isinstance(transport, FreelanceTransport)
    transport.replicas.sockets()
    for i in range(len(fakes.replicas)):
        wait_connected(transport, i)
    transport.preferred = first
    return client


def answered_by(fakes: FakeReplicas) -> list[list[str]]:
    return [r.types() for r in fakes.replicas]


# --------------------------------------------------------------------------
# Which transport


def test_several_endpoints_get_failover_and_one_endpoint_lazy_pirate():
    assert isinstance(Client("tcp://127.0.0.1:1,tcp://127.0.0.1:2")._transport, FreelanceTransport)
    listed = Client(["tcp://127.0.0.1:1", " tcp://127.0.0.1:2 "])
    assert isinstance(listed._transport, FreelanceTransport)
    assert listed.endpoint == "tcp://127.0.0.1:1,tcp://127.0.0.1:2"
    assert isinstance(Client("tcp://127.0.0.1:1")._transport, ZmqTransport)
    assert isinstance(Client(["tcp://127.0.0.1:1"])._transport, ZmqTransport)
    # a server this process started is taken whole, whatever its path holds
    assert isinstance(connect("ipc:///tmp/a,b/s.sock", revive=lambda: False), ZmqTransport)
    with pytest.raises(ValueError):
        Client(" , ")


def test_request_id_is_read_from_the_body():
    assert request_id(request_body({"type": "hello"}, 7)) == 7
    assert request_id(request_body({"type": "hello"}, 1 << 40)) == 1 << 40
    assert request_id(msgpack.packb({"type": "hello"})) is None


# --------------------------------------------------------------------------
# The lock-step path


def test_requests_stay_on_the_replica_that_answered(replicas):
    client = client_on(replicas, first=1)
    for _ in range(4):
        assert client.hello()["replica"] == "r1"
    assert answered_by(replicas) == [[], ["hello"] * 4, []]


def test_a_silent_replica_costs_one_timeout_then_the_next_one_answers(replicas):
    replicas[0].mode = "silent"
    client = client_on(replicas, first=0, timeout=0.3)
    started = time.monotonic()
    assert client.hello()["replica"] == "r1"
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.3 + 1.0
    assert client.hello()["replica"] == "r1"  # and the client stays there
    assert answered_by(replicas) == [["hello"], ["hello", "hello"], []]


def test_a_replica_with_no_connection_is_skipped_without_waiting(replicas):
    client = client_on(replicas, first=0, timeout=5.0)
    replicas[0].stop()
    started = time.monotonic()
    assert client.hello()["replica"] == "r1"
    assert time.monotonic() - started < 2.5  # far below the 5 s attempt


def test_a_replica_that_dies_holding_the_request_is_left_before_the_timeout(replicas):
    replicas[0].mode = "silent"
    client = client_on(replicas, first=0, timeout=5.0)
    threading.Timer(0.3, replicas[0].stop).start()
    started = time.monotonic()
    assert client.hello()["replica"] == "r1"
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 3.0, elapsed  # the lost connection, not the 5 s timeout
    assert replicas[0].types() == ["hello"]


def test_a_late_reply_to_an_earlier_request_is_dropped(replicas):
    replicas[0].mode = "late"
    replicas[0].delay = 0.4
    client = client_on(replicas, first=0, timeout=0.1)
    assert client.hello()["replica"] == "r1"  # r0 answers it 0.4 s later
    time.sleep(0.6)  # r0's late reply is now waiting on its socket
    replicas[0].mode = "answer"
    client._transport.preferred = 0
    reply = client.hello()  # Client.request raises if the reply's id is not this request's
    assert reply["replica"] == "r0"
    assert reply["id"] == 1


def test_a_slow_replica_that_answers_first_is_taken(replicas):
    """A resent request has the same id: whichever replica answers it first is the answer."""
    replicas[0].mode = "late"
    replicas[0].delay = 0.15
    replicas[1].mode = "silent"
    client = client_on(replicas, first=0, timeout=0.1, retries=3)
    assert client.hello()["replica"] == "r0"
    assert client._transport.preferred == 0


def test_every_replica_silent_raises_server_unavailable_after_the_retries(replicas):
    for replica in replicas.replicas:
        replica.mode = "silent"
    client = client_on(replicas, timeout=0.2, retries=4)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable) as error:
        client.hello()
    assert 4 * 0.2 <= time.monotonic() - started < 4 * 0.2 + 2.0
    message = str(error.value)
    assert "4 attempts" in message and all(e in message for e in replicas.endpoints)
    assert error.value.endpoint == ",".join(replicas.endpoints)
    assert sum(len(t) for t in answered_by(replicas)) == 4  # one send per attempt, spread over the replicas
    assert all(answered_by(replicas))


def test_no_replica_running_raises_server_unavailable_within_the_deadline(replicas):
    client = client_on(replicas, timeout=0.2, retries=2)
    for replica in replicas.replicas:
        replica.stop()
    started = time.monotonic()
    with pytest.raises(ServerUnavailable):
        client.hello()
    assert time.monotonic() - started < 2 * 0.2 + 2.0


def test_a_replica_back_on_its_endpoint_is_used_again(replicas):
    client = client_on(replicas, first=0, timeout=0.5)
    for replica in replicas.replicas[1:]:
        replica.stop()
    replicas[0].stop()
    replicas[2].start()
    assert client.hello()["replica"] == "r2"


def test_unknown_hash_is_reopened_on_the_replica_that_answered_it(replicas):
    for replica in replicas.replicas:
        replica.mode = "forget"
    client = client_on(replicas, first=0)
    opened = client.open(SPEC, GROUPS)
    assert opened.hash == HASH
    assert client.window(opened, 0, 4).lr[:, 0].tolist() == [1.0, 0.5, 0.25, 0.125]
    replicas[0].stop()  # r1 never saw the handle
    assert client.window(opened, 4, 2).lr[:, 0].tolist() == [0.5**4, 0.5**5]
    assert replicas[1].types() == ["window", "open", "window"]
    assert replicas[2].types() == []


# --------------------------------------------------------------------------
# The prefetch path


def channel_on(client: Client) -> FreelanceChannel:
    channel = client.channel()
    channel.replicas.sockets()
    for i in range(len(channel.replicas)):
        wait_connected(channel, i)
    return channel


def test_channel_sends_where_the_client_sends_and_matches_by_id(replicas):
    client = client_on(replicas, first=2)
    channel = channel_on(client)
    channel.send(window_message(HASH, 0, 2))
    second = channel.send(window_message(HASH, 2, 2))
    assert channel.receive(second, 1.0)["start"] == 2  # the reply to `first` is skipped
    assert replicas[2].types() == ["window", "window"]


def test_channel_resends_to_the_next_replica_when_its_replica_dies(replicas):
    replicas[0].mode = "silent"
    client = client_on(replicas, first=0)
    channel = channel_on(client)
    request = channel.send(window_message(HASH, 8, 2))
    replicas[0].stop()
    started = time.monotonic()
    reply = channel.receive(request, 5.0)
    assert reply["start"] == 8 and reply["replica"] == "r1"
    assert time.monotonic() - started < 2.0
    assert client._transport.preferred == 1  # the client follows to where the handle now is


def test_channel_tries_each_replica_once_then_gives_the_request_back(replicas):
    for replica in replicas.replicas:
        replica.mode = "silent"
    client = client_on(replicas, first=1)
    channel = channel_on(client)
    request = channel.send(window_message(HASH, 0, 2))
    started = time.monotonic()
    assert channel.receive(request, 0.2) is None
    assert 3 * 0.2 <= time.monotonic() - started < 3 * 0.2 + 2.0
    assert answered_by(replicas) == [["window"], ["window"], ["window"]]


def test_channel_send_with_no_replica_connected_goes_out_when_one_is(replicas):
    client = client_on(replicas, first=0)
    channel = channel_on(client)
    for replica in replicas.replicas:
        replica.stop()
    deadline = time.monotonic() + 5
    while any(channel.replicas.connected(i) for i in range(3)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    waiting = channel.send(window_message(HASH, 0, 2))
    assert time.monotonic() - started < 0.5  # send does not wait for a connection
    assert channel.receive(waiting, 0.2) is None  # still no replica: the caller asks again
    again = channel.send(window_message(HASH, 0, 2))
    threading.Timer(0.2, replicas[2].start).start()
    reply = channel.receive(again, 5.0)
    assert reply["replica"] == "r2" and reply["start"] == 0


def test_lrbridge_endpoint_with_commas_makes_the_default_client_fail_over(monkeypatch):
    import lrbridge.client as client_module

    monkeypatch.setenv("LRBRIDGE_ENDPOINT", "tcp://127.0.0.1:1, tcp://127.0.0.1:2")
    monkeypatch.setattr(client_module, "_default", None)
    client = client_module.default_client()
    assert isinstance(client._transport, FreelanceTransport)
    assert client._transport.endpoints == ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]
    client.close()
