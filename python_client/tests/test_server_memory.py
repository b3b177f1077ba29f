"""The server's memory under a steady load: the node it runs on keeps V8's
young generation bounded (V8 grows it to 128 MiB when many objects live a
little while, as requests and replies in flight do, and keeps it while the
load lasts), and glibc's mmap threshold fixed (it rises after large blocks
are freed, and blocks of that size then fragment the heap). The soak in
bench/load.py measures the whole process.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lrbridge.embedded import SERVER_MALLOC_TUNABLES, SERVER_NODE_FLAGS, ServerProcess, server_command, server_env

# Objects that survive a few scavenges before they die, at a high rate.
SURVIVORS = """
const v8 = require("v8");
const ring = new Array(100000);
let most = 0;
for (let i = 0; i < 4e6; i++) {
  ring[i % ring.length] = { i, a: [i, i] };
  if (i % 10000 === 0) most = Math.max(most, v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size);
}
console.log(most);
"""


def semi_space_mib() -> int:
    return int(re.fullmatch(r"--max-semi-space-size=(\d+)", SERVER_NODE_FLAGS[0]).group(1))


def test_the_servers_node_keeps_the_young_generation_bounded(server_cli):
    node_and_flags = server_command()[:-1]  # what the CLI and the embedded server run under
    out = subprocess.run([*node_and_flags, "-e", SURVIVORS], capture_output=True, text=True, check=True, timeout=120)
    # The new space is two semi-spaces.
    assert int(out.stdout) <= 2 * semi_space_mib() * 2**20


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads the server's command line and environment from /proc")
def test_the_embedded_server_runs_with_those_flags_and_tunables(server_cli, monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    with ServerProcess() as process:
        argv = Path(f"/proc/{process.process.pid}/cmdline").read_bytes().decode().split("\0")
        environ = Path(f"/proc/{process.process.pid}/environ").read_bytes().decode().split("\0")
    assert argv[1 : 1 + len(SERVER_NODE_FLAGS)] == list(SERVER_NODE_FLAGS)
    assert argv[1 + len(SERVER_NODE_FLAGS)].endswith("cli.js") and "serve" in argv
    assert f"GLIBC_TUNABLES={SERVER_MALLOC_TUNABLES}" in environ


def test_server_env_adds_the_tunables_before_the_users():
    assert server_env({"PATH": "/bin"}) == {"PATH": "/bin", "GLIBC_TUNABLES": SERVER_MALLOC_TUNABLES}
    # Ours first: a setting the user gives for the same tunable comes later and wins.
    mine = server_env({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"})["GLIBC_TUNABLES"]
    assert mine == f"{SERVER_MALLOC_TUNABLES}:glibc.malloc.mmap_threshold=65536"
