"""lrbridge: learning-rate and momentum schedules written in TypeScript, served over ZeroMQ.

``import lrbridge`` does not import torch; ``lrbridge.lr_scheduler`` (the
drop-in ``torch.optim.lr_scheduler`` classes) is loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .client import Client, Opened, Window, default_client, resolve_client
from .errors import AuthError, BadRequest, LRBridgeError, ProtocolError, ServerUnavailable, SpecError

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BadRequest",
    "Client",
    "LRBridgeError",
    "Opened",
    "ProtocolError",
    "ServerUnavailable",
    "SpecError",
    "Window",
    "RangeTestResult",
    "Schedule",
    "callbacks",
    "compile_module",
    "default_client",
    "ensemble",
    "alias",
    "diff",
    "find_lr",
    "get_scheduler",
    "history",
    "publish",
    "registry",
    "resolve",
    "runs",
    "lr_scheduler",
    "resolve_client",
    "spec",
]

_LAZY_SUBMODULES = {"lr_scheduler", "spec", "callbacks", "ensemble", "registry"}
# Names that live in modules importing torch: loaded on first access.
_LAZY_NAMES = {"compile_module": "modules", "Schedule": "schedule", "get_scheduler": "hf", "find_lr": "lr_finder", "RangeTestResult": "lr_finder"}
# The registry (registry.py): refs resolved and published by name.
_LAZY_NAMES.update({name: "registry" for name in ("resolve", "publish", "alias", "history", "diff", "runs")})


def __getattr__(name: str) -> Any:
    # PEP 562: torch is imported only when someone asks for what needs it.
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'lrbridge' has no attribute {name!r}")
