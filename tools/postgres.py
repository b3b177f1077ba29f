#!/usr/bin/env python3
"""A throwaway Postgres server for tests and demos, from Debian's postgresql.

    python3 tools/postgres.py start DIR   # prints postgres://postgres@127.0.0.1:PORT/postgres
    python3 tools/postgres.py stop DIR

The cluster lives in DIR (created), listens on a free port on 127.0.0.1 and
on a unix socket in DIR, trusts local connections, and runs as an
unprivileged user (Postgres refuses root): `postgres` when we are root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile


def bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        sys.exit("tools/postgres.py: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
    return os.path.dirname(found[-1])


def as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def reachable(directory: str) -> None:
    """The server user must traverse DIR's parents: a private temp dir of ours is opened to it (search only)."""
    tmp = os.path.realpath(tempfile.gettempdir())
    parent = os.path.dirname(directory)
    while parent.startswith(tmp + "/"):
        st = os.stat(parent)
        if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
            os.chmod(parent, st.st_mode | 0o711)
        parent = os.path.dirname(parent)
    if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", directory]).returncode != 0:
        sys.exit(f"tools/postgres.py: the postgres user cannot reach {directory}: pick a DIR whose parents it can traverse")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(directory: str) -> str:
    directory = os.path.abspath(directory)
    data = os.path.join(directory, "data")
    os.makedirs(directory, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        reachable(directory)
    binaries = bin_dir()
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        subprocess.run(
            as_owner([f"{binaries}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    port = free_port()
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        as_owner([f"{binaries}/pg_ctl", "-D", data, "-l", os.path.join(directory, "log"), "-o", options, "-w", "-t", "60", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    with open(os.path.join(directory, "url"), "w") as f:
        f.write(url + "\n")
    return url


def stop(directory: str) -> None:
    data = os.path.join(os.path.abspath(directory), "data")
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        subprocess.run(as_owner([f"{bin_dir()}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]), check=False, stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop", "rm"):
        print(__doc__, file=sys.stderr)
        return 2
    command, directory = argv
    if command == "start":
        print(start(directory), flush=True)
    else:
        stop(directory)
        if command == "rm":
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
