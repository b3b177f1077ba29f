"""An in-process registry server for unit tests of the client's registry logic.

Speaks the registry messages of proto/PROTOCOL.md ("Registry") through the
real codec (``fake_transport.py``), over a toy store: each version's spec is a StepLR
(``{type: "StepLR", step_size, gamma}``) whose rows this fake computes
(``lr0 * gamma ** (k // step_size)``). Refs are looked up, never validated
beyond what the tests need. Every request is kept in ``requests``.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
from fake_transport import FakeTransport

from lrbridge.protocol import PROTOCOL_VERSION


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def canonical(spec: dict) -> dict:
    return {"type": "StepLR", "step_size": int(spec["step_size"]), "gamma": float(spec.get("gamma", 0.1))}


class FakeRegistry(FakeTransport):
    endpoint = "inproc://fake-registry"

    def __init__(self, *, admin: bool = True, server: str = "lrbridge-ts/0.1.0") -> None:
        super().__init__()
        self.admin = admin
        self.server = server
        self.versions: dict[str, list[dict]] = {}
        self.aliases: dict[str, dict[str, int]] = {}
        self.handles: dict[str, tuple[dict, list]] = {}
        self.uses: list[dict] = []
        self.events: list[dict] = []
        self.rows_scale = 1.0  # another engine: every value scaled
        self.store_down = False  # refs get STORE_UNAVAILABLE

    # -- the store ---------------------------------------------------------------

    def publish(self, name: str, spec: dict) -> int:
        spec = canonical(spec)
        versions = self.versions.setdefault(name, [])
        for v in versions:
            if v["canonical"] == spec:
                return v["version"]
        versions.append({"name": name, "version": len(versions) + 1, "spec_hash": _hash(spec), "canonical": spec})
        return len(versions)

    def move(self, name: str, alias: str, version: int) -> None:
        self.aliases.setdefault(name, {})[alias] = version

    def _lookup(self, ref: str) -> dict | str:
        if self.store_down:
            return "the store is unavailable"
        name, _, selector = ref.partition("@")
        versions = self.versions.get(name)
        if not versions:
            return f"no name {name!r} in {ref!r}"
        if selector in ("", "latest"):
            return versions[-1]
        if selector.isdigit():
            n = int(selector)
            return versions[n - 1] if 1 <= n <= len(versions) else f"{ref!r}: no version {n}"
        if selector.startswith("sha256:"):
            for v in versions:
                if v["spec_hash"] == selector[7:]:
                    return v
            return f"{ref!r}: no such hash"
        if selector in self.aliases.get(name, {}):
            return versions[self.aliases[name][selector] - 1]
        return f"{ref!r}: no alias {selector!r}"

    def rows(self, spec: dict, groups: list, start: int, count: int) -> np.ndarray:
        k = np.arange(start, start + count)[:, None]
        lr0 = np.array([g.get("initial_lr", g["lr"]) for g in groups])[None, :]
        return self.rows_scale * lr0 * spec["gamma"] ** (k // spec["step_size"])

    # -- the protocol --------------------------------------------------------------

    def answer(self, req: dict) -> dict:
        self.requests.append(req)
        head = {"v": PROTOCOL_VERSION, "id": req["id"]}
        reply = getattr(self, "_" + req["type"], None)
        if reply is None:
            return {**head, "type": "error", "code": "UNKNOWN_TYPE", "message": req["type"], "path": "type"}
        return {**head, **reply(req)}

    @staticmethod
    def _error(code: str, message: str, path: str) -> dict:
        return {"type": "error", "code": code, "message": message, "path": path}

    def _hello(self, req):
        return {"type": "hello", "server": self.server, "protocol": PROTOCOL_VERSION, "capabilities": ["registry"],
                "max_window": 65536, "max_values": 1 << 20, "admin": self.admin}

    def _open(self, req):
        resolved = None
        if "ref" in req:
            found = self._lookup(req["ref"])
            if isinstance(found, str):
                return self._error("STORE_UNAVAILABLE" if self.store_down else "UNKNOWN_REF", found, "ref")
            spec = found["canonical"]
            resolved = {"ref": req["ref"], "name": found["name"], "version": found["version"], "spec_hash": found["spec_hash"]}
        else:
            spec = canonical(req["spec"])
        handle = _hash({"spec": spec, "groups": req["groups"], "last_epoch": req.get("last_epoch", -1)})
        self.handles[handle] = (spec, req["groups"])
        if "run" in req:
            at = req["run"].get("step", req.get("last_epoch", -1) + 1)
            self.uses.append({**(resolved or {"spec_hash": _hash(spec)}), "run": req["run"], "step": at})
        first = req.get("last_epoch", -1) + 1
        row = self.rows(spec, req["groups"], first, 1)[0]
        keys = [{"lr": float(row[i]), "initial_lr": g.get("initial_lr", g["lr"])} for i, g in enumerate(req["groups"])]
        out = {"type": "opened", "hash": handle, "spec_hash": _hash(spec), "canonical": spec, "kind": "deterministic",
               "momentum_key": None, "chainable": False, "groups": len(req["groups"]), "row_end": None,
               "max_rows": 65536, "first_row": first, "group_keys": keys, "attrs": {}}
        if resolved is not None:
            out["resolved"] = resolved
        return out

    def _window(self, req):
        if req["hash"] not in self.handles:
            return self._error("UNKNOWN_HASH", "unknown hash", "hash")
        spec, groups = self.handles[req["hash"]]
        lr = self.rows(spec, groups, int(req["start"]), int(req["count"]))
        if "origin" in req:
            self.events.append({"kind": "origin", "run": req.get("run"), "step": req["origin"]["step"]})
        return {"type": "window", "hash": req["hash"], "start": req["start"], "count": req["count"],
                "groups": len(groups), "lr": lr.astype("<f8").tobytes(), "momentum": None}

    _rebase = _window

    def _resolve(self, req):
        found = self._lookup(req["ref"])
        if isinstance(found, str):
            return self._error("UNKNOWN_REF", found, "ref")
        pinned = "@" in req["ref"] and (req["ref"].split("@")[1].isdigit() or "sha256:" in req["ref"])
        return {"type": "resolved", "ref": req["ref"], **found, "message": None, "author": None,
                "created_at": time.time(), "pinned": pinned}

    def _publish(self, req):
        if not self.admin:
            return self._error("FORBIDDEN", "publish needs the admin endpoint", "type")
        before = len(self.versions.get(req["name"], []))
        version = self.publish(req["name"], req["spec"])
        v = self.versions[req["name"]][version - 1]
        return {"type": "published", **v, "created": version > before}

    def _alias(self, req):
        if not self.admin:
            return self._error("FORBIDDEN", "alias needs the admin endpoint", "type")
        now = self.aliases.get(req["name"], {}).get(req["alias"])
        if "expect" in req and req["expect"] != now:
            return self._error("ALIAS_CONFLICT", f"{req['name']}@{req['alias']} points at {now}", "expect")
        self.move(req["name"], req["alias"], req["version"])
        return {"type": "aliased", "name": req["name"], "alias": req["alias"], "from": now, "to": req["version"], "at": time.time()}

    def _diff(self, req):
        a, b = self._lookup(req["a"]), self._lookup(req["b"])
        groups = req.get("groups") or [{"lr": 1.0}]
        ra, rb = self.rows(a["canonical"], groups, 0, req["steps"]), self.rows(b["canonical"], groups, 0, req["steps"])
        differ = np.nonzero((ra != rb).any(axis=1))[0]
        paths = [{"path": k, "a": a["canonical"][k], "b": b["canonical"][k]} for k in a["canonical"] if a["canonical"][k] != b["canonical"][k]]
        short = lambda v: {k: v[k] for k in ("name", "version", "spec_hash")}  # noqa: E731
        return {"type": "diff", "a": short(a), "b": short(b), "paths": paths,
                "first_step": int(differ[0]) if len(differ) else None,
                "max_abs": float(np.abs(ra - rb).max()), "max_rel": float((np.abs(ra - rb) / np.abs(ra)).max())}

    def _runs(self, req):
        return {"type": "runs", "runs": [{"id": u["run"]["id"], "uses": [u]} for u in self.uses]}
