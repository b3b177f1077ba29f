"""A training process for the live-view tests: steps a drop-in scheduler slowly.

    python live_trainer.py ENDPOINT STEPS SLEEP_S SPEC_JSON

The run's name comes from LRBRIDGE_RUN_NAME. Prints "ready" once the
scheduler is open, then trains, then exits (its run turns finished).
"""

from __future__ import annotations

import json
import sys
import time

import torch

from lrbridge import lr_scheduler


def main() -> None:
    endpoint, steps, sleep_s, spec = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    cls = getattr(lr_scheduler, spec.pop("type"))
    sched = cls(opt, **spec, server=endpoint)
    print("ready", flush=True)
    for _ in range(steps):
        opt.step()
        sched.step()
        time.sleep(sleep_s)


if __name__ == "__main__":
    main()
