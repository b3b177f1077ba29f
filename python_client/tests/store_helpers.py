"""Shared pieces of the registry tests: a throwaway Postgres cluster, and a
real server with a store and an admin endpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from lrbridge.embedded import ServerProcess, node_executable

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway Postgres cluster (tools/postgres.py): its URL. Skips without Postgres binaries."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("no Postgres binaries (make postgres installs them)")
    work = tempfile.mkdtemp(prefix="lrbr-")
    tool = [sys.executable, str(REPO_ROOT / "tools" / "postgres.py")]
    pg = os.path.join(work, "pg")
    try:
        url = subprocess.run([*tool, "start", pg], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        try:
            yield url
        finally:
            subprocess.run([*tool, "stop", pg], check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def server_with_store(cli: Path, store: str | None = None) -> Iterator[tuple[ServerProcess, str]]:
    """A started server on the registry `store` (default: a fresh SQLite file),
    its admin endpoint on ipc://: (process, admin endpoint)."""
    work = tempfile.mkdtemp(prefix="lrba-")
    admin = f"ipc://{work}/admin.sock"
    store = store or os.path.join(work, "registry.sqlite")
    process = ServerProcess(command=[node_executable(), str(cli)], args=["--registry", store, "--admin", admin])
    process.start(timeout=60)
    try:
        yield process, admin
    finally:
        process.stop()
        shutil.rmtree(work, ignore_errors=True)
