"""The RS-recipe training loop: DDP, AMP, accumulation, EMA, validation, checkpoints and exact resume."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time

import torch
from fvcore.common.config import CfgNode
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rs3d.data import ClipNormalizer, SkipTracker, build_loader, load_class_names_for
from rs3d.engine.checkpoint import CheckpointManager, load_checkpoint, rng_state, save_atomic, set_rng_state
from rs3d.engine.distributed import DistInfo, init_distributed
from rs3d.engine.ema import ModelEma
from rs3d.engine.evaluator import evaluate
from rs3d.engine.monitor import Monitor, format_eta, memory_mb
from rs3d.engine.optim import build_optimizer, build_scheduler, scaled_lr
from rs3d.engine.setup import autocast, autocast_dtype, limit_cpu_threads, load_weights, seed_everything
from rs3d.evaluation import SmoothedValue
from rs3d.models import build_model

logger = logging.getLogger("rs3d")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; the run stops before anything is checkpointed."""


class Trainer:
    """Builds everything a run needs from the config once, then ``train()``; see tools/train_net.py."""

    def __init__(self, cfg: CfgNode, dist: DistInfo | None = None):
        self.cfg, self.dist = cfg, dist or init_distributed(cfg.TRAIN.DEVICE)
        self.device = self.dist.device
        if self.device.type == "cpu":
            limit_cpu_threads(cfg.DATA_LOADER.NUM_WORKERS, self.dist.world_size)
        seed_everything(cfg.SEED, cfg.TRAIN.DETERMINISTIC)
        self.class_names = load_class_names_for(cfg)
        self.model = build_model(cfg).to(self.device)
        if cfg.TRAIN.CHECKPOINT_FILE:
            load_weights(self.model, cfg.TRAIN.CHECKPOINT_FILE)
        if cfg.TRAIN.SYNC_BN and self.dist.distributed:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if cfg.TRAIN.CHANNELS_LAST:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        self.ema = ModelEma(self.model, cfg.SOLVER.EMA_DECAY) if cfg.SOLVER.EMA_DECAY > 0 else None
        self.amp_dtype = autocast_dtype(cfg.TRAIN.MIXED_PRECISION, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.normalizer = ClipNormalizer.from_config(cfg, self.device, cfg.TRAIN.CHANNELS_LAST)
        self.skips = SkipTracker()
        self.monitor = Monitor(cfg.OUTPUT_DIR, self.dist.is_main)
        self.checkpoints = CheckpointManager(os.path.join(cfg.OUTPUT_DIR, "checkpoints"), cfg.TRAIN.KEEP_CHECKPOINTS)
        self.start_epoch, self.step, self.best = 0, 0, -math.inf
        self.history: list[dict] = []
        if cfg.TRAIN.ENABLE:
            self._build_training()

    # ------------------------------------------------------------------ setup
    def _build_training(self) -> None:
        cfg, d = self.cfg, self.dist
        self.train_loader = build_loader(cfg, "train", rank=d.rank, world_size=d.world_size)
        self.val_loader = build_loader(cfg, "val", multi_view=False, rank=d.rank, world_size=d.world_size)
        self.accumulation = cfg.SOLVER.ACCUMULATION_STEPS
        self.steps_per_epoch = len(self.train_loader) // self.accumulation
        if self.steps_per_epoch == 0:
            raise ValueError(f"TRAIN.BATCH_SIZE x SOLVER.ACCUMULATION_STEPS is larger than the training split "
                             f"({len(self.train_loader.dataset)} videos)")
        self.global_batch = cfg.TRAIN.BATCH_SIZE * d.world_size * self.accumulation
        self.lr = scaled_lr(cfg.SOLVER.BASE_LR, cfg.SOLVER.REFERENCE_BATCH_SIZE, self.global_batch)
        self.optimizer = build_optimizer(self.model, self.lr, cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY,
                                         cfg.SOLVER.NESTEROV)
        total = cfg.SOLVER.MAX_EPOCH * self.steps_per_epoch
        self.scheduler = build_scheduler(self.optimizer, total, round(cfg.SOLVER.WARMUP_EPOCHS * self.steps_per_epoch))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.SOLVER.LABEL_SMOOTHING)
        net: nn.Module = self.model
        if d.distributed:
            net = DistributedDataParallel(net, device_ids=[d.local_rank] if self.device.type == "cuda" else None)
        self.net = torch.compile(net) if cfg.TRAIN.COMPILE else net
        if cfg.TRAIN.AUTO_RESUME:
            latest = self.checkpoints.latest()
            if latest:
                self.resume(latest)

    def state_dict(self, epoch: int) -> dict:
        """Everything needed to continue exactly after ``epoch`` completed epochs."""
        return {
            "model": self.model.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "epoch": epoch, "step": self.step, "best": self.best,
            "rng": rng_state(), "config": self.cfg.dump(), "class_names": self.class_names,
            "arch": self.cfg.MODEL.ARCH, "history": self.history,
        }

    def resume(self, path: str) -> None:
        """Restore a checkpoint written by :meth:`state_dict` (weights, optimiser, schedule, RNGs)."""
        state = load_checkpoint(path, self.device)
        self.model.load_state_dict(state["model"])
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.step, self.best = state["epoch"], state["step"], state["best"]
        self.history = list(state.get("history", []))
        set_rng_state(state["rng"])
        logger.info("resumed from %s (epoch %d, step %d)", path, self.start_epoch, self.step)

    # ------------------------------------------------------------------ training
    def train(self) -> dict:
        """Train from ``start_epoch`` to SOLVER.MAX_EPOCH, validating and checkpointing on schedule."""
        cfg = self.cfg
        logger.info("training %s: %d videos, global batch %d, LR %.4g, %d steps/epoch, %d epochs on %s",
                    cfg.MODEL.ARCH, len(self.train_loader.dataset), self.global_batch, self.lr,
                    self.steps_per_epoch, cfg.SOLVER.MAX_EPOCH, self.device)
        for epoch in range(self.start_epoch, cfg.SOLVER.MAX_EPOCH):
            summary = self.train_epoch(epoch)
            last = epoch + 1 == cfg.SOLVER.MAX_EPOCH
            if (epoch + 1) % cfg.TRAIN.EVAL_PERIOD == 0 or last:
                summary.update(self.validate(epoch))
            self.history.append(summary)
            score = summary.get("val_ema_top1", summary.get("val_top1", -math.inf))
            is_best = score > self.best
            self.best = max(self.best, score)
            if self.dist.is_main and ((epoch + 1) % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or last):
                self.checkpoints.save(epoch + 1, self.state_dict(epoch + 1), is_best)
        if self.dist.is_main:
            self.export()
        logger.info("skipped %d unreadable training/validation samples in total", self.skips.total_skips)
        return self.history[-1] if self.history else {}

    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training split; returns the epoch's mean loss and top-1."""
        cfg, net = self.cfg, self.net
        net.train()
        self.train_loader.sampler.set_epoch(epoch)
        self.optimizer.zero_grad(set_to_none=True)
        data_time, step_time = SmoothedValue(), SmoothedValue()
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        # Device-side sums: reading them forces a GPU sync, so that happens only on log steps.
        correct, loss_sum = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        seen, tic = 0, time.perf_counter()
        micro_batches = self.steps_per_epoch * self.accumulation
        for i, batch in enumerate(self.train_loader):
            if i >= micro_batches:
                break
            data_time.update(time.perf_counter() - tic)
            self.skips.update(batch["failures"])
            videos, labels = self.normalizer(batch["video"]), batch["label"].to(self.device, non_blocking=True)
            boundary = (i + 1) % self.accumulation == 0
            sync = contextlib.nullcontext() if boundary or not self.dist.distributed else net.no_sync()
            with sync:
                with autocast(self.device, self.amp_dtype):
                    logits = net(videos)
                loss = self.criterion(logits.float(), labels)
                self.scaler.scale(loss / self.accumulation).backward()
            bad |= ~torch.isfinite(loss.detach())
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += len(labels)
            loss_sum += loss.detach() * len(labels)
            if boundary:
                self._optimizer_step()
            step_time.update(time.perf_counter() - tic)
            tic = time.perf_counter()
            if (i + 1) % cfg.TRAIN.LOG_PERIOD == 0 or i + 1 == micro_batches:
                self._check_finite(bad, epoch, i)
                self._log_step(epoch, i, micro_batches, float(loss_sum) / seen, data_time, step_time,
                               float(correct) / seen)
        self._check_finite(bad, epoch, micro_batches - 1)
        if self.dist.distributed:
            self._sync_buffers()
        skipped = self.skips.end_epoch()
        if skipped:
            logger.warning("epoch %d: %d unreadable videos were replaced by others (each logged once above)",
                           epoch + 1, skipped)
        summary = {"epoch": epoch + 1, "train_loss": float(loss_sum) / max(1, seen),
                   "train_top1": 100.0 * float(correct) / max(1, seen), "skipped_videos": skipped}
        self.monitor.scalars(self.step, summary, "train_epoch")
        return summary

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's BN statistics (local batches move them apart), so ranks stay identical."""
        modules = [self.model] + ([self.ema.module] if self.ema else [])
        for module in modules:
            for buffer in module.buffers():
                torch.distributed.broadcast(buffer, 0)

    def _optimizer_step(self) -> None:
        if self.cfg.SOLVER.GRAD_CLIP_NORM > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.SOLVER.GRAD_CLIP_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema:
            self.ema.update(self.model)
        self.step += 1

    def _check_finite(self, bad: torch.Tensor, epoch: int, iteration: int) -> None:
        if bool(bad):
            latest = self.checkpoints.latest() or "none written yet"
            raise NonFiniteLossError(f"loss became NaN/Inf in epoch {epoch + 1} by iteration {iteration + 1}; "
                                     f"stopping. Last good checkpoint: {latest} (try a lower SOLVER.BASE_LR, "
                                     f"SOLVER.GRAD_CLIP_NORM or TRAIN.MIXED_PRECISION bf16)")

    def _log_step(self, epoch: int, i: int, total: int, loss: float, data_time: SmoothedValue,
                  step_time: SmoothedValue, accuracy: float) -> None:
        clips_per_s = self.cfg.TRAIN.BATCH_SIZE * self.dist.world_size / max(step_time.avg, 1e-9)
        remaining = (self.cfg.SOLVER.MAX_EPOCH - epoch - 1) * total + (total - i - 1)
        values = {"loss": loss, "lr": self.optimizer.param_groups[0]["lr"],
                  "top1": 100.0 * accuracy, "data_time": data_time.avg,
                  "step_time": step_time.avg, "clips_per_s": clips_per_s, "memory_mb": memory_mb(self.device)}
        self.monitor.scalars(self.step, {"epoch": epoch + 1, "iter": i + 1, **values}, "train")
        self.monitor.line(
            f"epoch {epoch + 1}/{self.cfg.SOLVER.MAX_EPOCH} iter {i + 1}/{total} loss {values['loss']:.4f} "
            f"lr {values['lr']:.4g} top1 {values['top1']:.1f} data {data_time.avg:.3f}s step {step_time.avg:.3f}s "
            f"{clips_per_s:.1f} clips/s ETA {format_eta(remaining * step_time.avg)} mem {values['memory_mb']:.0f}MB",
            final=i + 1 == total)

    # ------------------------------------------------------------------ evaluation
    def validate(self, epoch: int) -> dict:
        """Single-view validation of the raw model and of the EMA model."""
        if self.cfg.TRAIN.PRECISE_BN:
            self._precise_bn()
        result = {}
        models = [("val", self.model)] + ([("val_ema", self.ema.module)] if self.ema else [])
        for name, model in models:
            summary = evaluate(model, self.val_loader, self.normalizer, self.amp_dtype, skips=self.skips).summary()
            result.update({f"{name}_{k}": v for k, v in summary.items() if k != "num_videos"})
            self.monitor.scalars(self.step, summary, name)
        text = " ".join(f"{k} {v:.2f}" for k, v in result.items() if "top" in k or "loss" in k)
        self.monitor.line(f"epoch {epoch + 1} validation: {text}")
        return result

    def _precise_bn(self) -> None:
        from fvcore.nn.precise_bn import update_bn_stats

        def inputs():
            for batch in self.train_loader:
                yield self.normalizer(batch["video"])

        with autocast(self.device, self.amp_dtype):
            update_bn_stats(self.model, inputs(), self.cfg.TRAIN.PRECISE_BN_BATCHES)

    def export_model(self) -> nn.Module:
        """The model that is exported and tested: the EMA model when EMA is on."""
        return self.ema.module if self.ema else self.model

    def export(self) -> str:
        """Write OUTPUT_DIR/model_final.pyth: exported weights, config and class names."""
        path = os.path.join(self.cfg.OUTPUT_DIR, "model_final.pyth")
        save_atomic({"model": self.export_model().state_dict(), "config": self.cfg.dump(),
                     "class_names": self.class_names, "arch": self.cfg.MODEL.ARCH}, path)
        return path
