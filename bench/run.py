"""`make bench`: lrbridge's speed targets, measured in one run, written to
bench/results/<full|quick>.json and docs/benchmarks.md.

    .venv/bin/python bench/run.py                 # full run (< 15 min on 2 cores)
    .venv/bin/python bench/run.py --quick         # ~2 min: fewer steps, short levels and soak
    .venv/bin/python bench/run.py --only step,e2e # some sections (startup, step, e2e, compute, modules, load, cache, attacks, failover, registry, live, soak)
    .venv/bin/python bench/run.py --soak-seconds 600

Every comparison (lrbridge vs torch) is made inside this one run, as a ratio.
Exit status: 0 when every target passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python_client"))

import common  # noqa: E402
from common import ROOT, Server, free_tcp_endpoint, log, machine_info  # noqa: E402

SECTIONS = ("startup", "step", "e2e", "compute", "modules", "load", "cache", "attacks", "failover", "registry", "live", "soak")
# The soak runs last and, unless --soak-seconds says otherwise, takes what is
# left of BUDGET_S (the full 10 minutes when the rest was quick enough).
BUDGET_S = 14 * 60.0
SOAK_MAX_S = 600.0
SOAK_MIN_S = 60.0
QUICK_SOAK_S = 50.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a ~2 minute version of everything")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    p.add_argument("--soak-seconds", type=float, default=None,
                   help=f"soak duration (default: what is left of {BUDGET_S / 60:.0f} minutes, between "
                        f"{SOAK_MIN_S:.0f} and {SOAK_MAX_S:.0f} s; {QUICK_SOAK_S:.0f} with --quick; 0 skips it)")
    p.add_argument("--steps", type=int, default=None, help="steps per step() measurement (default 100000)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats per config (default 3)")
    p.add_argument("--transport", choices=("tcp", "ipc"), default="ipc", help="for the step/e2e sections")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    q = args.quick
    args.steps = args.steps or (20_000 if q else 100_000)
    args.repeats = args.repeats or (2 if q else 3)
    args.opt_steps = 5_000 if q else 20_000
    args.e2e_runs = 3 if q else 10
    args.e2e_epochs = 4 if q else 12
    args.compute_min_time = 0.05 if q else 0.1
    args.compute_batches = 3 if q else 5
    args.levels = [1, 8, 32, 64]
    args.level_seconds = 1.5 if q else 4.0
    args.cache_total = 100_000
    args.startup_repeats = 5 if q else 11
    args.fuzz_frames = 5_000 if q else 100_000
    args.failover_repeats = 3 if q else 10
    if args.soak_seconds is None and q:
        args.soak_seconds = QUICK_SOAK_S
    return args


def soak_seconds(args: argparse.Namespace, started: float) -> float:
    if args.soak_seconds is not None:
        return args.soak_seconds
    left = BUDGET_S - (time.time() - started)
    return max(SOAK_MIN_S, min(SOAK_MAX_S, left))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not common.CLI.is_file():
        log(f"{common.CLI} is missing: run `make setup` (or `npx tsc -p tsconfig.json`) first")
        return 2
    started = time.time()
    results: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # A run of some sections only is kept apart, so it never replaces a whole run's numbers.
        "mode": ("quick" if args.quick else "full") if set(args.only) == set(SECTIONS) else "partial",
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "doc")},
        "machine": machine_info(),
        "sections": {},
        "timings_s": {},
    }
    targets: list[dict] = []

    def section(name: str, fn, judge):
        if name not in args.only:
            return
        log(f"[{name}] ...")
        t = time.time()
        try:
            out = fn()
            results["sections"][name] = out
            targets.extend({"section": name, **t_} for t_ in judge(out))
        except Exception as exc:  # one broken section must not hide the others' numbers
            import traceback

            traceback.print_exc()
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            targets.append({"section": name, "target": f"{name} section ran", "value": str(exc)[:200], "pass": False})
        results["timings_s"][name] = round(time.time() - t, 1)
        log(f"[{name}] done in {results['timings_s'][name]:.0f} s")

    import startup

    section("startup", lambda: startup.run(args.startup_repeats), startup.targets)

    endpoint = free_tcp_endpoint() if args.transport == "tcp" else common.ipc_endpoint("bench")
    need_server = {"step", "e2e"} & set(args.only)
    server = Server(endpoint) if need_server else None
    try:
        if server:
            results["step_server"] = server.endpoint
            import end_to_end
            import step_overhead

            section("step", lambda: step_overhead.run(server.endpoint, args.steps, args.repeats, args.opt_steps),
                    step_overhead.targets)
            section("e2e", lambda: end_to_end.run(server.endpoint, args.e2e_runs, args.e2e_epochs),
                    end_to_end.targets)
    finally:
        if server:
            server.stop()

    import attacks
    import cache_scale
    import load
    import modules
    import server_compute

    section("compute", lambda: server_compute.run(args.compute_min_time, args.compute_batches),
            server_compute.targets)
    section("modules", lambda: modules.run(args.quick), modules.targets)
    section("load", lambda: load.run(args.levels, args.level_seconds), load.targets)
    section("cache", lambda: cache_scale.run(args.cache_total, [1000, 10_000, 50_000]), cache_scale.targets)
    section("attacks", lambda: attacks.run(args.fuzz_frames), attacks.targets)
    import failover

    section("failover", lambda: failover.run(args.failover_repeats), failover.targets)
    import registry_speed

    section("registry", lambda: registry_speed.run(args.quick), registry_speed.targets)
    import live

    section("live", lambda: live.run(8.0 if args.quick else 20.0), live.targets)
    if soak_seconds(args, started) > 0:
        section("soak", lambda: load.run_soak(soak_seconds(args, started)), load.soak_targets)

    results["targets"] = targets
    results["total_seconds"] = round(time.time() - started, 1)
    write_outputs(results, Path(args.out), Path(args.doc))

    print()
    for t_ in targets:
        print(f"{'PASS' if t_['pass'] else 'FAIL'}  [{t_['section']}] {t_['target']}: {t_['value']}")
    passed = sum(t_["pass"] for t_ in targets)
    print(f"\n{passed}/{len(targets)} targets passed in {results['total_seconds']:.0f} s; "
          f"results in {args.out}, table in {args.doc}")
    return 0 if passed == len(targets) else 1


def write_outputs(results: dict, out_dir: Path, doc: Path) -> None:
    import report

    out_dir.mkdir(parents=True, exist_ok=True)
    # One file per mode, overwritten: git history keeps the earlier runs.
    (out_dir / f"{results['mode']}.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    if results["mode"] == "partial":
        doc = out_dir / "partial.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(report.markdown(results))


if __name__ == "__main__":
    sys.exit(main())
