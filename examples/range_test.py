"""The LR range test, its suggestions, and 1cycle runs that use them.

    python examples/range_test.py [--seeds 5] [--epochs 20]

``lrbridge.find_lr`` raises the lr from 1e-5 to 10 over 100 batches (the
server smooths the loss, stops when it diverges and computes fastai's
suggestions: valley, steep, minimum, slide), then puts the model and the
optimizer back. Each suggestion then seeds ``max_lr`` of a 1cycle run
(``lrbridge.lr_scheduler.OneCycleLR``, the drop-in class), next to a
hand-picked max_lr = 0.1 and two deliberately wrong choices (10× and ÷30 the
valley suggestion), several seeds each.

The task is the one in _digits.py (digits, 500 training images with 20 %
label noise, a 64-64-10 MLP, SGD + momentum 0.9). The range test sees the
noisy labels too: its curve is the training loss. Plot:
examples/out/range_test.png (the curve with the suggestions marked).
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

import _digits as D
from lrbridge.lr_scheduler import OneCycleLR
from lrbridge.lr_finder import find_lr


def one_cycle_accuracy(data: D.Data, max_lr: float, epochs: int, seeds: int) -> list[float]:
    total = epochs * data.steps_per_epoch
    return [
        D.train(lambda opt: OneCycleLR(opt, max_lr=max_lr, total_steps=total), data, epochs=epochs, seed=seed).final_acc
        for seed in range(seeds)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)

    data = D.load()
    model = D.make_model(0)
    optimizer = D.make_optimizer(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_batches = [(x, y) for _, x, y in D.batches(data, 1, seed=0)]  # one epoch; cycled by find_lr

    result = find_lr(model, optimizer, F.cross_entropy, train_batches, start_lr=1e-5, end_lr=10.0, num_steps=100)
    restored = all(torch.equal(v, before[k]) for k, v in model.state_dict().items())

    print(f"LR range test: {len(result.lrs)} batches, {result.reason}; model and optimizer restored: {restored}, "
          f"optimizer lr back to {optimizer.param_groups[0]['lr']}\n")
    print(f"{'lr':>10} | {'batch loss':>10} | {'smoothed':>8}")
    print("-" * 36)
    for i in range(0, len(result.lrs), max(1, len(result.lrs) // 12)):
        print(f"{result.lrs[i]:10.2e} | {result.losses[i]:10.4f} | {result.smoothed[i]:8.4f}")
    print(f"{result.lrs[-1]:10.2e} | {result.losses[-1]:10.4f} | {result.smoothed[-1]:8.4f}  (last)")

    print("\nsuggestions: " + ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -" for k, v in result.suggestions().items()))
    print(f"suggest_bounds(): {({k: float(f'{v:.3g}') for k, v in result.suggest_bounds().items()})}")

    candidates = {f"{name} ({value:.3g})": value for name, value in result.suggestions().items() if value is not None}
    candidates["hand-picked (0.1)"] = 0.1
    candidates[f"10x valley ({10 * result.valley:.3g})"] = 10 * result.valley
    candidates[f"valley/30 ({result.valley / 30:.3g})"] = result.valley / 30

    print(f"\n1cycle runs (OneCycleLR, {args.epochs} epochs), test accuracy (%) over {args.seeds} seeds\n")
    print(f"{'max_lr from':<26} | {'accuracy':>14}")
    print("-" * 44)
    rows = []
    for label, max_lr in candidates.items():
        mean, std = D.mean_std(one_cycle_accuracy(data, max_lr, args.epochs, args.seeds))
        rows.append((label, mean))
        print(f"{label:<26} | {100 * mean:6.2f} ± {100 * std:4.2f}")

    fig, axes = D.figure(1, 1)
    if fig is not None:
        result.plot(ax=axes[0][0])
        D.save(fig, "range_test.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
