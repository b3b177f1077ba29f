"""Anytime performance: cyclical / SGDR schedules vs step decay, measured at every cycle end.

    python examples/anytime.py [--seeds 5] [--epochs 30]

The claim (Smith 2017; Loshchilov & Hutter 2017): cyclical schedules and SGDR have good "anytime"
performance: stop training at the end of any cycle and the model is good,
because every cycle ends at a low lr. Step decay (and any schedule fitted to
one budget) is only good at the end it was planned for; before its drops the
lr is still high.

Schedules (multipliers of the base lr 0.1, SGD + momentum 0.9), one full run
of ``--epochs`` epochs each:

- sgdr:       SGDR (Keras CosineDecayRestarts): cycles of 2, 4, 8, 16 epochs (t_mult 2)
- cyclic:     cosine cycles of a fixed 5 epochs, restarting at the base lr
- step:       ×0.1 at 50 % and 75 % of the full run (planned for the full budget)
- cosine:     one cosine over the full run (also planned for the full budget)

The cycle ends come from the server with the schedule
(``Schedule.cycle_starts``), not from arithmetic here. The task is the one in
_digits.py (digits, 500 noisy-label training images, small MLP), where the
lr at the moment of stopping shows clearly in test accuracy.

Printed: mean test accuracy over seeds at every cycle end of either cyclic
schedule; ``*`` marks the schedules for which that epoch is a cycle end.
Plot: examples/out/anytime.png (accuracy after every epoch, cycle ends marked).
"""

from __future__ import annotations

import argparse
import sys

import torch

import _digits as D
from lrbridge import spec as S
from lrbridge.schedule import Schedule


def schedules(spe: int, epochs: int) -> dict[str, dict]:
    total = epochs * spe
    return {
        "sgdr": S.sgdr(t_0=2 * spe, t_mult=2),
        "cyclic": S.cycles(t_initial=5 * spe, shape="cosine"),
        "step": S.piecewise([total // 2, (3 * total) // 4], [1.0, 0.1, 0.01]),
        "cosine": S.cosine(total),
    }


def cycle_end_epochs(spec: dict, spe: int, epochs: int) -> list[int]:
    """Epochs at whose end a cycle ends, as the server reports the boundaries."""
    probe = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=D.LR)
    starts = Schedule(probe, spec).cycle_starts(0, epochs * spe + 1)
    return [s // spe for s in starts if s > 0 and s % spe == 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    data = D.load()
    spe = data.steps_per_epoch
    specs = schedules(spe, args.epochs)
    ends = {name: cycle_end_epochs(specs[name], spe, args.epochs) for name in ("sgdr", "cyclic")}
    check_points = sorted(set(ends["sgdr"]) | set(ends["cyclic"]))

    curves: dict[str, list[list[float]]] = {name: [] for name in specs}
    lrs: dict[str, list[float]] = {}
    for name, spec in specs.items():
        for seed in range(args.seeds):
            run = D.train(spec, data, epochs=args.epochs, seed=seed)
            curves[name].append(run.epoch_acc)
            lrs.setdefault(name, run.lrs)
        print(f"{name} done", file=sys.stderr)

    def mean_at(name: str, epoch: int) -> float:
        return D.mean_std([c[epoch - 1] for c in curves[name]])[0]

    print(f"\nTest accuracy (%) at every cycle end, mean over {args.seeds} seeds; * = a cycle end of that schedule")
    print(f"cycle ends: sgdr {ends['sgdr']}, cyclic {ends['cyclic']} (epochs of {spe} steps)\n")
    names = list(specs)
    header = f"{'epoch':>5}" + "".join(f" | {n:>9}" for n in names) + " | best"
    print(header)
    print("-" * len(header))
    for epoch in check_points:
        row = {n: mean_at(n, epoch) for n in names}
        cells = "".join(f" | {100 * row[n]:7.2f}{'*' if epoch in ends.get(n, []) else ' '} " for n in names)
        print(f"{epoch:>5}{cells}| {max(row, key=row.get)}")
    final = {n: mean_at(n, args.epochs) for n in names}
    print(f"\nat the planned end (epoch {args.epochs}): " + ", ".join(f"{n} {100 * v:.2f}" for n, v in final.items()))
    anytime = {n: sum(mean_at(n, e) for e in check_points) / len(check_points) for n in names}
    print("mean over the check points: " + ", ".join(f"{n} {100 * v:.2f}" for n, v in anytime.items()))

    fig, axes = D.figure(2, 1, size=(8.0, 3.6))
    if fig is not None:
        ax = axes[0][0]
        x = list(range(1, args.epochs + 1))
        for i, name in enumerate(names):
            mean = [mean_at(name, e) * 100 for e in x]
            ax.plot(x, mean, label=name, color=f"C{i}")
            for e in ends.get(name, []):
                ax.plot([e], [mean_at(name, e) * 100], "o", color=f"C{i}")
        ax.set_ylim(max(0, min(mean_at(n, e) for n in names for e in x) * 100 - 2), None)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("accuracy after every epoch (dots: cycle ends)")
        ax.legend(fontsize=8)
        ax = axes[1][0]
        for i, name in enumerate(names):
            ax.plot([k / spe for k in range(len(lrs[name]))], lrs[name], label=name, color=f"C{i}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("lr")
        ax.legend(fontsize=8)
        D.save(fig, "anytime.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
