"""Fixtures that run the REAL node server (dist/cli.js), built from ts/src when stale.

- ``server``: one server for the whole session; yields its endpoint string.
- ``fresh_server``: factory for fault tests; ``fresh_server()`` starts a new
  server on a fresh ipc endpoint, ``fresh_server(endpoint)`` on a given one
  (a restart). Returns a started ``lrbridge.embedded.ServerProcess``
  (``.endpoint``, ``.kill()``, ``.stop()``); all are stopped after the test.
- ``client``: a ``lrbridge.Client`` on the session server.
- ``repo_root``: the checkout's root (``Path``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import zmq

REPO_ROOT = Path(__file__).resolve().parents[2]
# Trainer tests build tiny models from configs: nothing may come from a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# LRBRIDGE_NODE_CLI tests another build of the server (an installed package) instead of this checkout's.
CLI = Path(os.environ.get("LRBRIDGE_NODE_CLI") or REPO_ROOT / "dist" / "cli.js")

# Tests run from a checkout whether or not the package is pip-installed.
if str(REPO_ROOT / "python_client") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "python_client"))

from lrbridge import Client  # noqa: E402
from lrbridge.embedded import ServerProcess, node_executable  # noqa: E402


def _newest_source_mtime() -> float:
    sources = [*(REPO_ROOT / "ts" / "src").rglob("*.ts"), REPO_ROOT / "tsconfig.json"]
    return max(p.stat().st_mtime for p in sources)


def _build_server() -> None:
    """tsc (on the pinned Node) when dist/cli.js is missing or older than ts/src.

    A file lock keeps concurrent pytest runs from building into dist/ at once.
    tsc writes its output even when some file has type errors; a build that
    produced no cli.js fails the session with tsc's output.
    """
    if os.environ.get("LRBRIDGE_NODE_CLI"):
        return
    with open(Path(tempfile.gettempdir()) / "lrbridge-tsc.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CLI.exists() and CLI.stat().st_mtime >= _newest_source_mtime():
            return
        result = subprocess.run(
            [node_executable(), "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        if result.returncode != 0:
            sys.stderr.write(f"lrbridge tests: tsc reported errors:\n{result.stdout[-4000:]}\n")
        if not CLI.exists():
            pytest.fail(f"tsc produced no {CLI}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
        if result.returncode == 0:
            CLI.touch()  # an unchanged output file keeps its old mtime


def _start(endpoint: str | None = None) -> ServerProcess:
    return ServerProcess(endpoint, command=[node_executable(), str(CLI)]).start(timeout=60)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def server_cli() -> Path:
    """dist/cli.js, built if stale."""
    _build_server()
    return CLI


@pytest.fixture(scope="session")
def server(server_cli):
    """Endpoint (str) of one real server shared by the session."""
    process = _start()
    try:
        yield process.endpoint
    finally:
        process.stop()


@pytest.fixture
def fresh_server(server_cli):
    """Factory: ``fresh_server(endpoint=None) -> ServerProcess`` (started); all stopped at teardown."""
    started: list[ServerProcess] = []

    def start(endpoint: str | None = None) -> ServerProcess:
        process = _start(endpoint)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture
def client(server):
    with Client(server) as c:
        yield c


@pytest.fixture
def short_tmp():
    """A short temp dir: ipc:// paths must stay under ~107 bytes."""
    path = tempfile.mkdtemp(prefix="lrbt-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dealer(server):
    """A raw DEALER on the session server: frames exactly as given, no client logic."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, 10_000)
    socket.connect(server)
    yield socket
    socket.close()


def pytest_terminal_summary(terminalreporter) -> None:
    """The worst relative error over every drop-in value compared with torch in this session."""
    from sched_helpers import PARITY

    if PARITY.count:
        terminalreporter.write_line(
            f"parity: {PARITY.count} group-values compared with torch, worst relative error {PARITY.value:.3g}"
        )
