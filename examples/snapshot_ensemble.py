"""Snapshot ensembles (Huang et al. 2017): one run, M cosine cycles, average the last m snapshots.

    python examples/snapshot_ensemble.py [--seeds 5] [--epochs 30] [--cycles 6]

The lr follows α(t) = α0/2·(cos(π·mod(t−1, ⌈T/M⌉)/⌈T/M⌉) + 1): M cosine cycles
restarting at the base lr (``spec.snapshot``). ``SnapshotSaver`` keeps the
model at each cycle end the server reports; ``SnapshotEnsemble`` averages the
softmax of the last m snapshots. Compared with, for the same number of
steps:

- the single final model of the same run (the m = 1 ensemble),
- a single model trained with one cosine over the whole run (a standard schedule).

The task is the one in _digits.py (digits, 500 training images with 20 %
label noise, a 64-64-10 MLP): with noisy labels the snapshots disagree on
the hard test images, which is where averaging can help. Plot:
examples/out/snapshot_ensemble.png.
"""

from __future__ import annotations

import argparse
import sys

import _digits as D
from lrbridge import spec as S
from lrbridge.callbacks import SnapshotSaver
from lrbridge.ensemble import SnapshotEnsemble


def snapshot_run(data: D.Data, epochs: int, cycles: int, seed: int) -> SnapshotSaver:
    model = D.make_model(seed)
    holder: dict = {}

    def after_step(scheduler, step):
        if "saver" not in holder:
            holder["saver"] = SnapshotSaver(scheduler, model, keep=cycles)
        holder["saver"].step()

    D.train(S.snapshot(total_steps=epochs * data.steps_per_epoch, snapshots=cycles), data, epochs=epochs, seed=seed,
            model=model, after_step=after_step)
    return holder["saver"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=6)
    args = parser.parse_args(argv)

    data = D.load()
    total = args.epochs * data.steps_per_epoch
    ms = list(range(1, args.cycles + 1))
    ens_acc: dict[int, list[float]] = {m: [] for m in ms}
    cosine_acc: list[float] = []
    member_acc: list[list[float]] = []
    snapshot_steps = None
    for seed in range(args.seeds):
        saver = snapshot_run(data, args.epochs, args.cycles, seed)
        snapshot_steps = [s.step for s in saver.snapshots]
        for m in ms:
            ens = SnapshotEnsemble(lambda: D.make_model(0), saver, m=m)
            ens_acc[m].append((ens.predict(data.x_test) == data.y_test).float().mean().item())
        member_acc.append(
            [(p.argmax(1) == data.y_test).float().mean().item() for p in SnapshotEnsemble(D.make_model(0), saver).member_probas(data.x_test)]
        )
        cosine_acc.append(D.train(S.cosine(total), data, epochs=args.epochs, seed=seed).final_acc)
        print(f"seed {seed} done", file=sys.stderr)

    print(f"\nSnapshot ensemble: {args.cycles} cycles over {args.epochs} epochs ({total} steps); "
          f"snapshots at steps {snapshot_steps} (server-reported cycle ends)")
    print(f"test accuracy (%), mean ± std over {args.seeds} seeds\n")
    print(f"{'model':<36} | {'accuracy':>14}")
    print("-" * 54)
    mean, std = D.mean_std(cosine_acc)
    print(f"{'single model, one cosine (baseline)':<36} | {100 * mean:6.2f} ± {100 * std:4.2f}")
    for m in ms:
        mean, std = D.mean_std(ens_acc[m])
        label = "single final snapshot (m = 1)" if m == 1 else f"ensemble of the last {m} snapshots"
        print(f"{label:<36} | {100 * mean:6.2f} ± {100 * std:4.2f}")
    per_member = [D.mean_std([row[i] for row in member_acc])[0] for i in range(args.cycles)]
    print("\neach snapshot alone (oldest first): " + ", ".join(f"{100 * a:.2f}" for a in per_member))
    best_m = max(ms, key=lambda m: D.mean_std(ens_acc[m])[0])
    gain = D.mean_std(ens_acc[best_m])[0] - D.mean_std(ens_acc[1])[0]
    wins = sum(a > b for a, b in zip(ens_acc[best_m], ens_acc[1]))
    print(f"best m = {best_m}: {100 * gain:+.2f} points over the final snapshot "
          f"(better in {wins} of {args.seeds} seeds); "
          f"{100 * (D.mean_std(ens_acc[best_m])[0] - D.mean_std(cosine_acc)[0]):+.2f} over the cosine baseline")

    fig, axes = D.figure(1, 1)
    if fig is not None:
        ax = axes[0][0]
        means = [100 * D.mean_std(ens_acc[m])[0] for m in ms]
        stds = [100 * D.mean_std(ens_acc[m])[1] for m in ms]
        ax.errorbar(ms, means, yerr=stds, marker="o", capsize=3, label="ensemble of the last m snapshots")
        ax.axhline(100 * D.mean_std(cosine_acc)[0], color="C3", linestyle="--", label="single model, one cosine")
        ax.plot(ms, [100 * per_member[args.cycles - m] for m in ms], "x", color="0.4", label="the m-th newest snapshot alone")
        ax.set_xlabel("m")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"snapshot ensemble, {args.cycles} cycles, {args.epochs} epochs")
        ax.legend(fontsize=8)
        D.save(fig, "snapshot_ensemble.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
