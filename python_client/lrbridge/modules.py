"""Schedules written as TypeScript modules, from Python.

``compile_module("./fractal.ts", params={...})`` runs ``lrbridge compile`` (the
same Node CLI the server ships): the file is type-checked and transpiled,
then evaluated and probed in the server's sandbox, and its spec node
``{"type": "module", "code", "library", "params"}`` comes back. That node is a
spec like any other: ``Schedule(opt, spec=node)`` opens it on any server, so
what runs locally is what a server (or a registry) runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from .embedded import server_command
from .errors import SpecError

COMPILE_TIMEOUT_S = 120.0  # type-checking on a loaded 2-core machine takes seconds


def compile_module(path: str | os.PathLike, params: dict | None = None) -> dict:
    """The spec node of a TypeScript schedule module, compiled with ``params``.

    Raises ``SpecError`` when the module does not compile, imports anything
    but ``lrbridge/schedules``, or is refused by the sandbox's probe; the
    message is the compiler's or the probe's.
    """
    if params is not None and not isinstance(params, dict):
        raise TypeError(f"lrbridge: params must be a dict, got {type(params).__name__}")
    argv = [*server_command(), "compile", os.fspath(path), "--params", json.dumps(params or {})]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if done.returncode != 0:
        message = done.stderr.strip() or f"lrbridge compile exited with {done.returncode}"
        raise SpecError(message, path="module", rule=message)
    node: Any = json.loads(done.stdout)
    return node
