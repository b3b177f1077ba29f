"""The trainers people use, for real: Lightning, the HF Trainer, Accelerate.

Tiny models built from configs, CPU, no downloads (HF_HUB_OFFLINE, conftest).
Each run is done twice, once with lrbridge's scheduler and once with torch's
(or transformers'), and the lrs the trainer itself saw must agree within 1e-12.
"""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path

import pytest
import torch

import lrbridge
import lrbridge.lr_scheduler as lrb

REL = 1e-12


def _close(ours, theirs):
    assert len(ours) == len(theirs) and ours
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert abs(a - b) <= REL * abs(b) + 1e-300, f"row {k}: {a!r} != {b!r}"


@pytest.fixture(autouse=True)
def _quiet():
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------
# Lightning

pl = pytest.importorskip("lightning.pytorch")


class _Tiny(pl.LightningModule):
    def __init__(self, kind: str, lib: str):
        super().__init__()
        self.kind, self.lib = kind, lib
        self.net = torch.nn.Linear(4, 1)
        self.seen: list[float] = []

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        # A metric with plateaus, so ReduceLROnPlateau cuts the lr more than once.
        self.log("plateau_metric", float(round(loss.item(), 0) if self.global_step % 3 else 50.0))
        return loss

    def on_train_batch_start(self, *_):
        self.seen.append(self.optimizers().param_groups[0]["lr"])

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        lib = lrb if self.lib == "lrbridge" else torch.optim.lr_scheduler
        if self.kind == "onecycle":
            return {"optimizer": opt, "lr_scheduler": {"scheduler": lib.OneCycleLR(opt, max_lr=0.3, total_steps=12), "interval": "step"}}
        plateau = lib.ReduceLROnPlateau(opt, patience=0, factor=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "plateau_metric", "interval": "step"}}


def _loader():
    gen = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(24, 4, generator=gen), torch.randn(24, 1, generator=gen) * 10)
    return torch.utils.data.DataLoader(data, batch_size=2)


def _fit(tmp: Path, kind: str, lib: str, max_steps: int, ckpt: str | None = None):
    torch.manual_seed(0)
    model = _Tiny(kind, lib)
    trainer = pl.Trainer(
        default_root_dir=tmp, max_steps=max_steps, accelerator="cpu", devices=1,
        logger=pl.loggers.CSVLogger(tmp, name="logs", version=0), log_every_n_steps=1,
        callbacks=[pl.callbacks.LearningRateMonitor(logging_interval="step"),
                   pl.callbacks.ModelCheckpoint(dirpath=tmp / "ckpt", every_n_train_steps=6, save_top_k=-1)],
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, _loader(), ckpt_path=ckpt)
    with open(tmp / "logs" / "version_0" / "metrics.csv") as f:
        monitored = [float(r["lr-SGD"]) for r in csv.DictReader(f) if r.get("lr-SGD")]
    return model.seen, monitored


@pytest.mark.parametrize("kind", ["onecycle", "plateau"])
def test_lightning_step_schedulers_and_lr_monitor_equal_torch(tmp_path, kind, server_cli):
    ours, ours_monitor = _fit(tmp_path / "ours", kind, "lrbridge", 12)
    theirs, theirs_monitor = _fit(tmp_path / "theirs", kind, "torch", 12)
    _close(ours, theirs)
    _close(ours_monitor, theirs_monitor)
    assert len(set(ours)) > 2  # the schedule moved


def test_lightning_resume_from_checkpoint_continues_exactly(tmp_path, server_cli):
    whole, _ = _fit(tmp_path / "whole", "onecycle", "lrbridge", 12)
    _fit(tmp_path / "half", "onecycle", "lrbridge", 6)
    [ckpt] = (tmp_path / "half" / "ckpt").glob("*step=6*.ckpt")
    resumed, _ = _fit(tmp_path / "resumed", "onecycle", "lrbridge", 12, ckpt=str(ckpt))
    assert len(resumed) == 6
    _close(resumed, whole[6:])


# --------------------------------------------------------------------------
# HF Trainer

transformers = pytest.importorskip("transformers")


class _Rows(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"input_ids": torch.tensor([(i * 7 + j) % 50 + 1 for j in range(6)]), "labels": torch.tensor(i % 2)}


def _hf_train(tmp: Path, lib: str, max_steps: int, resume: str | None = None):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=64, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        max_position_embeddings=16, num_labels=2,
    )
    model = transformers.BertForSequenceClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    get = lrbridge.get_scheduler if lib == "lrbridge" else transformers.get_scheduler
    sched = get("cosine", opt, num_warmup_steps=2, num_training_steps=8)
    args = transformers.TrainingArguments(
        output_dir=str(tmp), max_steps=max_steps, per_device_train_batch_size=4, logging_steps=1,
        save_strategy="steps", save_steps=4, report_to=[], use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, seed=0,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Rows(), optimizers=(opt, sched))
    trainer.train(resume_from_checkpoint=resume)
    return [r["learning_rate"] for r in trainer.state.log_history if "learning_rate" in r]


def test_hf_trainer_with_lrbridge_scheduler_and_resume(tmp_path, server_cli):
    theirs = _hf_train(tmp_path / "theirs", "transformers", 8)
    ours = _hf_train(tmp_path / "ours", "lrbridge", 8)
    _close(ours, theirs)
    resumed = _hf_train(tmp_path / "ours", "lrbridge", 8, resume=str(tmp_path / "ours" / "checkpoint-4"))
    # The first four come back with the checkpoint's log history; the last four are new.
    assert len(resumed) == 8
    _close(resumed[4:], theirs[4:])


# --------------------------------------------------------------------------
# Accelerate


def test_accelerate_prepare_on_an_lrbridge_scheduler(server_cli):
    accelerate = pytest.importorskip("accelerate")

    def run(lib):
        accelerator = accelerate.Accelerator(cpu=True)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = lib.OneCycleLR(opt, max_lr=0.4, total_steps=10)
        model, opt, sched = accelerator.prepare(model, opt, sched)
        out = []
        for _ in range(9):
            loss = model(torch.ones(2, 4)).sum()
            accelerator.backward(loss)
            opt.step()
            sched.step()
            opt.zero_grad()
            out.append(sched.get_last_lr()[0])
        return out, type(sched).__name__

    ours, wrapper = run(lrb)
    theirs, _ = run(torch.optim.lr_scheduler)
    assert wrapper == "AcceleratedScheduler"
    _close(ours, theirs)
