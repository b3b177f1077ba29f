"""What ``Client`` sends through in the unit tests: an in-process transport.

A subclass answers decoded requests (``answer``); requests arrive as their
bytes and replies are encoded and decoded again, so what the client sees has
crossed the same msgpack a socket would carry.
"""

from __future__ import annotations

import itertools

import msgpack

from lrbridge.client import Client
from lrbridge.protocol import PROTOCOL_VERSION, decode, encode


class FakeTransport:
    endpoint = "inproc://fake"

    def __init__(self) -> None:
        self.requests: list[dict] = []  # every request, in arrival order
        self.drop_prefetch = False  # the DEALER channel gets no replies (a lost prefetch)

    def answer(self, req: dict) -> dict:
        raise NotImplementedError

    # -- what the client sees --------------------------------------------------

    def client(self) -> Client:
        return Client(self.endpoint, transport=self)

    def exchange(self, body: bytes, timeout: float, retries: int) -> dict:
        return decode(encode(self.answer(msgpack.unpackb(body, raw=False))))

    def channel(self) -> "FakeChannel":
        return FakeChannel(self)

    def close(self) -> None:
        pass

    def types(self) -> list[str]:
        return [r["type"] for r in self.requests]


class FakeChannel:
    """The DEALER channel's side: replies are ready at once, or never (``drop_prefetch``)."""

    def __init__(self, server: FakeTransport) -> None:
        self.server = server
        self.ids = itertools.count()
        self.replies: dict[int, dict] = {}

    def send(self, msg: dict) -> int:
        request_id = next(self.ids)
        reply = decode(encode(self.server.answer({"v": PROTOCOL_VERSION, "id": request_id, **msg})))
        if not self.server.drop_prefetch:
            self.replies[request_id] = reply
        return request_id

    def receive(self, request_id: int, timeout_s: float) -> dict | None:
        return self.replies.pop(request_id, None)

    def close(self) -> None:
        self.replies.clear()
