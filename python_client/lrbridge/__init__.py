"""lrbridge: learning-rate and momentum schedules written in TypeScript, served over ZeroMQ.

``import lrbridge`` does not import torch; ``lrbridge.lr_scheduler`` (the
drop-in ``torch.optim.lr_scheduler`` classes) is loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .client import Client, Opened, Window, default_client, resolve_client
from .errors import BadRequest, LRBridgeError, ProtocolError, ServerUnavailable, SpecError

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "Client",
    "LRBridgeError",
    "Opened",
    "ProtocolError",
    "ServerUnavailable",
    "SpecError",
    "Window",
    "default_client",
    "lr_scheduler",
    "resolve_client",
]

_LAZY_SUBMODULES = {"lr_scheduler"}


def __getattr__(name: str) -> Any:
    # PEP 562: `lrbridge.lr_scheduler` imports torch only when someone asks for it.
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lrbridge' has no attribute {name!r}")
