"""A private schedule server started on demand (``server=None`` with no LRBRIDGE_ENDPOINT).

Runs ``node <cli.js> serve --bind ipc://<tmpdir>/lrbridge.sock`` and waits for
its ready line. The server is stopped at interpreter exit; if this process dies
without running atexit (SIGKILL, os._exit), the child is asked to exit too:
its stdin is a pipe whose write end only this process holds (EOF when it dies),
and on Linux PR_SET_PDEATHSIG sends it SIGTERM.

Where the CLI comes from, first match wins:
1. env LRBRIDGE_NODE_CLI (path to cli.js);
2. the lrbridge checkout this file lives in (``dist/cli.js`` next to its package.json);
3. ``node_modules/lrbridge/dist/cli.js`` under the current directory or its parents;
4. ``npx --no-install lrbridge``.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import ServerUnavailable

READY_PREFIX = "lrbridge serving on"
DEFAULT_START_TIMEOUT_S = 30.0  # node start-up on a loaded 2-core machine can take seconds

_INSTALL_HINT = (
    "Install the server with `npm install lrbridge` (needs Node >= 20), "
    "set LRBRIDGE_NODE_CLI to its dist/cli.js, or run a server yourself "
    "(`npx lrbridge serve --bind tcp://127.0.0.1:5555`) and set LRBRIDGE_ENDPOINT to it."
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


def _node_modules_cli(start: Path) -> Path | None:
    for directory in [start, *start.parents]:
        cli = directory / "node_modules" / "lrbridge" / "dist" / "cli.js"
        if cli.is_file():
            return cli
    return None


def server_command() -> list[str]:
    """The argv prefix that runs the lrbridge CLI (``serve ...`` goes after it)."""
    node = os.environ.get("LRBRIDGE_NODE") or shutil.which("node")
    env_cli = os.environ.get("LRBRIDGE_NODE_CLI")
    if env_cli and not Path(env_cli).is_file():
        raise ServerUnavailable(f"lrbridge: LRBRIDGE_NODE_CLI={env_cli} is not a file. {_INSTALL_HINT}")
    cli = (
        Path(env_cli)
        if env_cli
        else _checkout_cli(Path(__file__).resolve().parent) or _node_modules_cli(Path.cwd())
    )
    if cli is not None:
        if node is None:
            raise ServerUnavailable(f"lrbridge: found {cli} but no `node` on PATH. {_INSTALL_HINT}")
        return [node, str(cli)]
    npx = shutil.which("npx")
    if npx is not None and node is not None:
        return [npx, "--no-install", "lrbridge"]
    raise ServerUnavailable(f"lrbridge: cannot find the lrbridge server (node or its CLI is missing). {_INSTALL_HINT}")


# --------------------------------------------------------------------------
# One server process


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the parent thread dies (Linux)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass  # best effort: stdin EOF and atexit still apply


def _pump_lines(stream, lines: "queue.Queue[str | None]") -> None:
    """Read the child's stdout forever (so its pipe never fills); queue every line."""
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
    lines.put(None)


class ServerProcess:
    """A `lrbridge serve` child process bound to ``endpoint`` (default: a fresh ipc path)."""

    def __init__(self, endpoint: str | None = None, *, command: list[str] | None = None) -> None:
        self._tmpdir = None
        if endpoint is None:
            # ipc paths are limited to ~107 bytes: keep the directory short.
            self._tmpdir = tempfile.mkdtemp(prefix="lrb-")
            endpoint = f"ipc://{self._tmpdir}/lrbridge.sock"
        self.endpoint = endpoint
        self.command = command
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
        argv = [*(self.command or server_command()), "serve", "--bind", self.endpoint, "--exit-on-stdin-eof"]
        log = tempfile.NamedTemporaryFile(prefix="lrbridge-stderr-", suffix=".log", delete=False)
        self._log_path = log.name
        # PDEATHSIG fires when the *thread* that forked exits: only tie it to the main thread.
        on_main_thread = threading.current_thread() is threading.main_thread()
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # Ctrl-C in the terminal reaches Python, not the server
                preexec_fn=_die_with_parent if on_main_thread and sys.platform == "linux" else None,
            )
        except OSError as exc:
            log.close()
            raise ServerUnavailable(f"lrbridge: cannot run {argv[0]}: {exc}. {_INSTALL_HINT}") from exc
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
                f"stderr: {stderr[-2000:] or '(nothing)'}\n{_INSTALL_HINT}",
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


def _stop_shared() -> None:
    with _shared_lock:
        if _shared is not None and _shared_pid == os.getpid():
            _shared.stop()
