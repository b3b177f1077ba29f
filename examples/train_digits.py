"""Train a small CNN on scikit-learn's bundled digits with a TypeScript-served schedule.

    python examples/train_digits.py                      # OneCycleLR from lrbridge
    python examples/train_digits.py --compare            # same run with torch's own scheduler, side by side
    python examples/train_digits.py --schedule CosineAnnealingLR
    python examples/train_digits.py --schedule my_spec.json

The schedule comes from `lrbridge.lr_scheduler` (one import changed from
`torch.optim.lr_scheduler`); with no LRBRIDGE_ENDPOINT set, lrbridge starts a
private local server on first use and stops it at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

# Run from a checkout without installing: the package lives in python_client/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python_client"))

import lrbridge.lr_scheduler as bridged  # noqa: E402

EPOCHS = 12
BATCH = 32
MAX_LR = 0.1


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def load_digits_tensors(device: torch.device):
    """Digits as (N, 1, 8, 8) float tensors, a fixed 80/20 split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    cut = int(0.8 * len(x))
    return (x[:cut].to(device), y[:cut].to(device)), (x[cut:].to(device), y[cut:].to(device))


def default_kwargs(name: str, total_steps: int, steps_per_epoch: int) -> dict:
    """Sensible constructor arguments for each scheduler class, sized to this run."""
    return {
        "OneCycleLR": dict(max_lr=MAX_LR, total_steps=total_steps),
        "CosineAnnealingLR": dict(T_max=total_steps),
        "CosineAnnealingWarmRestarts": dict(T_0=steps_per_epoch * 2, T_mult=2),
        "CyclicLR": dict(base_lr=MAX_LR / 25, max_lr=MAX_LR, step_size_up=steps_per_epoch * 2),
        "StepLR": dict(step_size=steps_per_epoch * 4, gamma=0.3),
        "MultiStepLR": dict(milestones=[total_steps // 2, 3 * total_steps // 4]),
        "ExponentialLR": dict(gamma=0.995),
        "LinearLR": dict(start_factor=0.1, total_iters=steps_per_epoch),
        "ConstantLR": dict(factor=0.5, total_iters=steps_per_epoch),
        "PolynomialLR": dict(total_iters=total_steps, power=2.0),
        "LambdaLR": dict(lr_lambda="0.998 ** epoch"),
        "MultiplicativeLR": dict(lr_lambda="0.998"),
    }[name]


@dataclass
class RunResult:
    label: str
    rows: list = field(default_factory=list)  # (epoch, loss, acc, lr, momentum)
    seconds: float = 0.0
    model: nn.Module | None = None
    lrs: list = field(default_factory=list)


def make_scheduler(module, schedule: str, optimizer, total_steps: int, steps_per_epoch: int):
    if schedule.endswith(".json"):
        import lrbridge

        with open(schedule) as f:
            return lrbridge.Schedule(optimizer, json.load(f))
    cls = getattr(module, schedule)
    kwargs = default_kwargs(schedule, total_steps, steps_per_epoch)
    if module is torch.optim.lr_scheduler and "lr_lambda" in kwargs:
        kwargs["lr_lambda"] = NATIVE_LAMBDAS[kwargs["lr_lambda"]]
    return cls(optimizer, **kwargs)


# torch needs callables where lrbridge takes expression strings.
NATIVE_LAMBDAS = {"0.998 ** epoch": lambda epoch: 0.998**epoch, "0.998": lambda epoch: 0.998}


def train(
    schedule: str = "OneCycleLR",
    *,
    native: bool = False,
    epochs: int = EPOCHS,
    seed: int = 0,
    device: torch.device | None = None,
    progress: bool = True,
) -> RunResult:
    """One training run; `native=True` uses torch.optim.lr_scheduler instead of lrbridge."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    (x_train, y_train), (x_test, y_test) = load_digits_tensors(device)
    torch.manual_seed(seed)
    model = SmallCNN().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=MAX_LR, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = (len(x_train) + BATCH - 1) // BATCH
    total_steps = epochs * steps_per_epoch
    module = torch.optim.lr_scheduler if native else bridged
    scheduler = make_scheduler(module, schedule, optimizer, total_steps, steps_per_epoch)
    label = f"{'torch' if native else 'lrbridge'}.{schedule}"
    result = RunResult(label=label, model=model)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, desc=label, leave=False, dynamic_ncols=True)
    shuffle = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=shuffle).to(device)
        total_loss = 0.0
        for i in range(0, len(x_train), BATCH):
            idx = order[i : i + BATCH]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.lrs.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
            total_loss += loss.item() * len(idx)
            if bar is not None:
                bar.update(1)
        model.eval()
        with torch.no_grad():
            acc = (model(x_test).argmax(1) == y_test).float().mean().item()
        momentum = optimizer.param_groups[0].get("momentum", float("nan"))
        result.rows.append((epoch + 1, total_loss / len(x_train), acc, scheduler.get_last_lr()[0], momentum))
        if bar is not None:
            bar.set_postfix(loss=f"{total_loss / len(x_train):.4f}", acc=f"{acc:.3f}")
    result.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return result


def print_table(runs: list[RunResult]) -> None:
    head = "epoch" + "".join(f" | {r.label:>44}" for r in runs)
    print(head)
    print("-" * len(head))
    for k in range(len(runs[0].rows)):
        cells = []
        for r in runs:
            epoch, loss, acc, lr, momentum = r.rows[k]
            cells.append(f" | loss {loss:.4f} acc {acc:.3f} lr {lr:.5f} mom {momentum:.3f}")
        print(f"{runs[0].rows[k][0]:>5}" + "".join(cells))
    for r in runs:
        print(f"{r.label}: {r.seconds:.2f} s, final accuracy {r.rows[-1][2]:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule", default="OneCycleLR", help="scheduler class name, or a spec .json file")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="also run torch's native scheduler and compare")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    runs = [train(args.schedule, epochs=args.epochs, seed=args.seed, device=device, progress=not args.no_progress)]
    if args.compare and not args.schedule.endswith(".json"):
        runs.append(
            train(args.schedule, native=True, epochs=args.epochs, seed=args.seed, device=device,
                  progress=not args.no_progress)
        )
    print_table(runs)
    if len(runs) == 2:
        a, b = (dict(r.model.named_parameters()) for r in runs)
        diff = max((a[k] - b[k]).abs().max().item() for k in a)
        lr_diff = max(abs(x - y) / max(abs(y), 1e-300) for x, y in zip(runs[0].lrs, runs[1].lrs))
        print(f"max |weight difference| lrbridge vs torch: {diff:.3e}; max relative lr difference: {lr_diff:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
