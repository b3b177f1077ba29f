"""Section 2: examples/train_digits.py end to end, lrbridge vs torch's own scheduler.

Runs alternate in ABBA order (L N N L L N ...) so drift in machine load hits
both sides alike. The example times its own training loop (scheduler
construction and the server start are outside it); LRBRIDGE_ENDPOINT points it
at the harness's server.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

from common import ROOT, log, median, spread


def load_example():
    path = ROOT / "examples" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("bench_train_digits", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def abba(pairs: int) -> list[bool]:
    """native flags: False, True, True, False, False, True, ..."""
    order = []
    for i in range(pairs):
        order += [False, True] if i % 2 == 0 else [True, False]
    return order


def run(endpoint: str, runs_each: int, epochs: int, schedule: str = "OneCycleLR") -> dict:
    os.environ["LRBRIDGE_ENDPOINT"] = endpoint
    # One intra-op thread: on 2 shared cores, OpenMP workers spin-waiting against
    # other processes swing run times by 10x; one thread keeps the ratio readable.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(endpoint, runs_each, epochs, schedule)
    finally:
        torch.set_num_threads(threads)


def _run(endpoint: str, runs_each: int, epochs: int, schedule: str) -> dict:
    example = load_example()
    # One untimed warm-up of each: first-touch costs (data load, torch kernels, server cache).
    for native in (False, True):
        example.train(schedule, native=native, epochs=1, seed=0, progress=False)
    seconds = {"lrbridge": [], "torch": []}
    for native in abba(runs_each):
        r = example.train(schedule, native=native, epochs=epochs, seed=0, progress=False)
        label = "torch" if native else "lrbridge"
        seconds[label].append(r.seconds)
        log(f"  e2e {label:8s} {r.seconds:.3f} s (final acc {r.rows[-1][2]:.4f})")
    # Pair i = the i-th run of each side; pairs sit next to each other in ABBA order.
    pair_ratios = [a / b for a, b in zip(seconds["lrbridge"], seconds["torch"])]
    return {
        "schedule": schedule,
        "epochs": epochs,
        "torch_threads": torch.get_num_threads(),
        "seconds": {k: spread(v) for k, v in seconds.items()},
        "raw_seconds": seconds,
        "ratio": median(seconds["lrbridge"]) / median(seconds["torch"]),
        "ratio_pairs": spread(pair_ratios),
    }


def targets(result: dict) -> list[dict]:
    return [{
        "target": "end to end wall clock ≤ 1.01× torch (train_digits, OneCycleLR)",
        "value": f"{result['ratio']:.4f}× (pairs: median {result['ratio_pairs']['median']:.4f}, "
                 f"range {result['ratio_pairs']['min']:.4f}–{result['ratio_pairs']['max']:.4f})",
        "pass": result["ratio"] <= 1.01,
    }]
