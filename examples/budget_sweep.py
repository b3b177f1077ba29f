"""Schedules at several training budgets (the REX paper's experiment, small).

    python examples/budget_sweep.py [--seeds 8] [--full-epochs 40]

Six schedules, each a multiplier of the same base lr (0.1, SGD + momentum 0.9),
run at 10 %, 25 %, 50 % and 100 % of a full run. As in the REX paper
(Chen, Wolfe, Kyrillidis 2022) a smaller budget is a separate run with the
same shape squeezed into fewer steps, not a truncated full run:

- step:        ×0.1 at 50 % and 75 % of the budget (the REX paper's step baseline)
- linear:      1 → 0
- cosine:      1 → 0
- one_cycle:   fastai fit_one_cycle (warm up to the base lr over 25 %, cosine down to 1/1e5,
               momentum 0.95 → 0.85 → 0.95)
- exponential: 1 → 0.01, geometric
- rex:         (1 - p)/(1 - p/2), the paper's profile

The task (see _digits.py): digits, 500 training images with 20 % label noise,
a 64-64-10 MLP. It is small enough to run many seeds on 2 CPU cores and hard
enough that the final accuracies differ by more than the test-set noise
(1297 test images: one image is 0.08 %).

Printed: mean ± std test accuracy per budget and schedule, the rank of each
schedule per budget (by mean), and how often each schedule finished first /
in the top 3 over all (budget, seed) settings. Plot: examples/out/budget_sweep.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import _digits as D
from lrbridge import spec as S

BUDGETS = (0.10, 0.25, 0.50, 1.00)


def schedules(total: int) -> dict[str, dict]:
    """The six specs for a run of ``total`` steps (multipliers of the base lr)."""
    return {
        "step": S.piecewise([total // 2, (3 * total) // 4], [1.0, 0.1, 0.01]),
        "linear": S.linear(total),
        "cosine": S.cosine(total),
        "one_cycle": S.one_cycle(total),
        "exponential": S.exponential(total, end=0.01),
        "rex": S.rex(total),
    }


def ranks(scores: dict[str, float]) -> dict[str, int]:
    """Competition ranking: 1 + how many did strictly better (ties share a rank)."""
    return {k: 1 + sum(1 for other in scores.values() if other > v) for k, v in scores.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--full-epochs", type=int, default=40)
    args = parser.parse_args(argv)

    data = D.load()
    spe = data.steps_per_epoch
    names = list(schedules(100))
    acc: dict[tuple[float, str], list[float]] = defaultdict(list)
    lr_curves: dict[str, list[float]] = {}
    started = time.perf_counter()
    for budget in BUDGETS:
        epochs = max(1, round(args.full_epochs * budget))
        total = epochs * spe
        for name, spec in schedules(total).items():
            for seed in range(args.seeds):
                run = D.train(spec, data, epochs=epochs, seed=seed)
                acc[(budget, name)].append(run.final_acc)
                if budget == 1.0 and seed == 0:
                    lr_curves[name] = run.lrs
        print(f"budget {budget:>4.0%} ({epochs} epochs, {total} steps) done", file=sys.stderr)

    # --- table: mean ± std and rank per budget
    print(f"\nTest accuracy (mean ± std over {args.seeds} seeds), rank by mean in brackets")
    print(f"full run = {args.full_epochs} epochs x {spe} steps; base lr {D.LR}, SGD momentum {D.MOMENTUM}\n")
    header = f"{'schedule':<12}" + "".join(f" | {f'{b:.0%} budget':>18}" for b in BUDGETS) + " | mean rank"
    print(header)
    print("-" * len(header))
    budget_ranks = {b: ranks({n: D.mean_std(acc[(b, n)])[0] for n in names}) for b in BUDGETS}
    for name in names:
        cells = []
        for b in BUDGETS:
            mean, std = D.mean_std(acc[(b, name)])
            cell = f"{100 * mean:.2f} ± {100 * std:.2f} [{budget_ranks[b][name]}]"
            cells.append(f" | {cell:>18}")
        mean_rank = sum(budget_ranks[b][name] for b in BUDGETS) / len(BUDGETS)
        print(f"{name:<12}" + "".join(cells) + f" | {mean_rank:9.2f}")

    # --- top-1 / top-3 finishes over all (budget, seed) settings, like the REX paper's count
    top1, top3 = defaultdict(int), defaultdict(int)
    settings = 0
    for b in BUDGETS:
        for seed in range(args.seeds):
            r = ranks({n: acc[(b, n)][seed] for n in names})
            settings += 1
            for n in names:
                top1[n] += r[n] == 1
                top3[n] += r[n] <= 3
    print(f"\nFinishes over {settings} settings (budget x seed; ties share a place)")
    print(f"{'schedule':<12} | {'top-1':>5} | {'top-3':>5}")
    for n in sorted(names, key=lambda n: (-top1[n], -top3[n])):
        print(f"{n:<12} | {top1[n]:>5} | {top3[n]:>5}")
    print(f"\n{time.perf_counter() - started:.1f} s")

    # --- plot
    fig, axes = D.figure(1, 2)
    if fig is not None:
        ax = axes[0][0]
        for name in names:
            means = [100 * D.mean_std(acc[(b, name)])[0] for b in BUDGETS]
            stds = [100 * D.mean_std(acc[(b, name)])[1] for b in BUDGETS]
            ax.errorbar([100 * b for b in BUDGETS], means, yerr=stds, marker="o", capsize=3, label=name)
        ax.set_xscale("log")
        ax.set_xticks([100 * b for b in BUDGETS], [f"{b:.0%}" for b in BUDGETS])
        ax.set_xlabel("budget (share of the full run)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("final accuracy by budget")
        ax.legend(fontsize=8)
        ax = axes[0][1]
        for name, lrs in lr_curves.items():
            ax.plot(lrs, label=name)
        ax.set_xlabel("step (100 % budget)")
        ax.set_ylabel("lr")
        ax.set_title("the schedules (served by lrbridge)")
        ax.legend(fontsize=8)
        D.save(fig, "budget_sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
