"""The training loop: :class:`TrainerBase` runs epochs of steps and calls hooks; :class:`Trainer` is the RS recipe
(DDP, AMP, gradient accumulation, label smoothing, exact resume) with builders a subclass can override.

The config is read once, in :meth:`Trainer.__init__` and the ``build_*`` methods; the loop and the hooks only
see plain attributes.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable

import torch
import yaml
from fvcore.common.config import CfgNode
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from rs3d.checkpoint.finite import non_finite_parts
from rs3d.checkpoint.io import load_checkpoint
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.checkpoint.rng import rng_state, set_rng_state
from rs3d.checkpoint.weights import load_weights
from rs3d.config import ConfigError
from rs3d.config.checks import check_config
from rs3d.data import (
    SkipTracker,
    TrainInputs,
    augmentation_on_device,
    build_loader,
    build_train_inputs,
    load_class_names_for,
)
from rs3d.data.batch import ClipBatch
from rs3d.data.build import backends
from rs3d.data.workers import describe_num_workers, resolve_num_workers
from rs3d.engine.compile import compile_training_net
from rs3d.engine.ema import ModelEma
from rs3d.engine.hooks.base import HookBase, TrainerView
from rs3d.engine.hooks.checkpointing import CheckpointHook
from rs3d.engine.hooks.debug import CrashAtStepHook
from rs3d.engine.hooks.diagnosis import CompileTimeHook, InputBoundHook
from rs3d.engine.hooks.evaluation import EvalHook, PreciseBNHook
from rs3d.engine.hooks.pictures import CurvesHook
from rs3d.engine.hooks.preemption import PreemptionHook
from rs3d.engine.hooks.progress import ProgressHook
from rs3d.engine.hooks.step import EMAHook, RankSeedHook
from rs3d.engine.hooks.trackers import build_tracker_hooks
from rs3d.engine.loader_guard import LoaderGuard
from rs3d.engine.monitor import Monitor
from rs3d.engine.optim import build_optimizer, build_scheduler, scaled_lr
from rs3d.models import build_model
from rs3d.models.registry import available_archs
from rs3d.utils import paths
from rs3d.utils.distributed import DistInfo, init_distributed
from rs3d.utils.errors import RunStoppedError
from rs3d.utils.precision import autocast, autocast_dtype
from rs3d.utils.runtime import limit_cpu_threads, seed_everything

logger = logging.getLogger("rs3d")


#: Checkpoint keys of older versions that are now a hook's state: old key -> (hook name, key in its state).
LEGACY_HOOK_KEYS = {"best": ("CheckpointHook", "best")}


def hook_states_of(state: dict) -> dict[str, dict]:
    """The hook states of a checkpoint; one written before hooks kept their own state has them at its top level
    (``best``), which is mapped to the hook that now owns it."""
    states = {name: dict(hook_state) for name, hook_state in (state.get("hooks") or {}).items()}
    for key, (hook, field) in LEGACY_HOOK_KEYS.items():
        if key in state and field not in states.get(hook, {}):
            states.setdefault(hook, {})[field] = state[key]
    return states


class NonFiniteLossError(RunStoppedError, FloatingPointError):
    """The loss became NaN or Inf; the run stops before anything is checkpointed."""


class NonFiniteStateError(NonFiniteLossError):
    """The weights, EMA or optimizer state hold a NaN or Inf; nothing is written, earlier checkpoints stay."""


class TrainerBase:
    """Epochs of steps with hooks around them. Subclasses set ``start_epoch``, ``max_epoch`` and
    ``iters_per_epoch`` and implement :meth:`epoch_batches`, :meth:`run_step` and :meth:`end_epoch`.

    Hooks read the trainer through a :class:`~rs3d.engine.hooks.base.TrainerView` and never set its attributes;
    a hook adds to the run's record only through :meth:`add_results`, and keeps its own state (with its
    ``state_dict`` if it must survive a resume: :meth:`hook_states`, :meth:`load_hook_states`)."""

    def __init__(self) -> None:
        self.hooks: list[HookBase] = []
        self.start_epoch = self.max_epoch = self.epoch = self.iter = self.iters_per_epoch = 0
        self.start_iter = 0  # iterations of ``start_epoch`` already done (resumed from a mid-epoch checkpoint)
        self.step = 0  # optimizer steps taken over the whole run
        self.stepped = False  # whether the last run_step ended with an optimizer step
        self.epoch_summary: dict = {}
        self.history: list[dict] = []
        self.completed = False  # whether the last train() ran to its end (hooks' after_train may ask)

    def register_hooks(self, hooks: Iterable[HookBase | None]) -> None:
        """Append hooks (None entries are skipped); they run in this order at every moment."""
        for hook in hooks:
            if hook is not None:
                hook.trainer = TrainerView(self)  # read-only, and no reference cycle between trainer and hooks
                self.hooks.append(hook)

    def add_results(self, results: dict) -> None:
        """Add a hook's results for the epoch that just ended (e.g. validation top-1) to :attr:`epoch_summary`,
        which the history, the next checkpoint and the hooks after it see. A key the summary holds already is
        refused: no hook overwrites the training numbers or another hook's."""
        clash = sorted(set(results) & set(self.epoch_summary))
        if clash:
            raise ValueError(f"epoch {self.epoch + 1} already has {', '.join(clash)}; results are added once")
        self.epoch_summary.update(results)

    def hook_states(self) -> dict[str, dict]:
        """Every hook's non-empty ``state_dict``, by hook name (what a checkpoint stores under "hooks")."""
        states: dict[str, dict] = {}
        for hook in self.hooks:
            state = hook.state_dict()
            if state:
                if hook.name in states:
                    raise ValueError(f"two hooks named {hook.name} keep state; give one another name")
                states[hook.name] = state
        return states

    def load_hook_states(self, states: dict[str, dict]) -> None:
        """Give each hook its state from :meth:`hook_states` of an earlier run (hooks not named there keep theirs;
        states of hooks this run does not have are left, with a log line)."""
        by_name = {hook.name: hook for hook in self.hooks}
        for name, state in states.items():
            if name in by_name:
                by_name[name].load_state_dict(state)
            else:
                logger.info("the checkpoint's state of hook %s is not used: this run has no such hook", name)

    def call_hooks(self, moment: str) -> None:
        for hook in self.hooks:
            getattr(hook, moment)()

    def stop_requested(self) -> bool:
        """Whether a stop signal reached this process (a hook with a ``received`` flag, e.g. the preemption hook)."""
        return any(getattr(hook, "received", None) for hook in self.hooks)

    @property
    def is_last_epoch(self) -> bool:
        return self.epoch + 1 == self.max_epoch

    def train(self) -> dict:
        """Run epochs ``start_epoch`` .. ``max_epoch - 1`` (the first from iteration ``start_iter``); returns the
        last epoch's summary.

        However the loop ends (finished, a stop signal, an exception, a second Ctrl-C), every hook's ``after_train``
        runs and then :meth:`cleanup` (detectron2's ``TrainerBase.train`` does the same); ``completed`` tells them
        whether training ran to its end."""
        self.completed = False
        failure: BaseException | None = None
        try:
            self.call_hooks("before_train")
            for self.epoch in range(self.start_epoch, self.max_epoch):
                self.call_hooks("before_epoch")
                self.iter = self.start_iter - 1
                for self.iter, batch in enumerate(self.epoch_batches(), self.start_iter):
                    self.call_hooks("before_step")
                    self.run_step(batch)
                    self.call_hooks("after_step")
                self.start_iter = 0
                self.epoch_summary = self.end_epoch()
                self.history.append(self.epoch_summary)  # hooks below add to it (validation results)
                self.call_hooks("after_epoch")
            self.completed = True
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._finish(failure)
        return self.history[-1] if self.history else {}

    def _finish(self, failure: BaseException | None) -> None:
        """Every hook's ``after_train``, then :meth:`cleanup`, each run even if an earlier one raises. Without an
        earlier failure, the first error raised here propagates; with one, later errors are only logged, so the
        original error is the one reported."""
        first: BaseException | None = None
        for step in [hook.after_train for hook in self.hooks] + [lambda: self.cleanup(failure)]:
            try:
                step()
            except Exception as exc:
                if failure is None and first is None:
                    first = exc
                else:
                    logger.error("while stopping, %s also failed: %s: %s", getattr(step, "__self__", self).__class__
                                 .__name__, type(exc).__name__, exc)
        if first is not None:
            raise first

    def cleanup(self, failure: BaseException | None) -> None:
        """Release what the loop holds (loader workers, open files); runs on every exit path, after the hooks'
        ``after_train``. ``failure`` is the exception ending the loop, if any."""

    def epoch_batches(self) -> Iterable:
        raise NotImplementedError

    def run_step(self, batch) -> None:
        raise NotImplementedError

    def end_epoch(self) -> dict:
        return {"epoch": self.epoch + 1}


class Trainer(TrainerBase):
    """The RS-recipe trainer. Everything is built from the config once; see tools/train_net.py.

    Args:
        cfg: the merged config (``rs3d.config.load_config``).
        dist: where this process sits in a torchrun job (default: read from the environment).

    Override ``build_model``, ``build_optimizer``, ``build_scheduler``, ``build_criterion``,
    ``build_train_loader``, ``build_train_inputs``, ``build_val_loader`` or ``build_hooks`` to change one piece.

    What hooks may read (``self.trainer.X``; they never set an attribute, and mutate only what the object offers
    for it, e.g. ``monitor``'s methods):

    - position: ``epoch``, ``iter``, ``step``, ``stepped``, ``start_epoch``, ``max_epoch``, ``iters_per_epoch``,
      ``is_last_epoch``, ``completed``, ``last_saved``;
    - the run: ``dist``, ``device``, ``amp_dtype``, ``batch_size``, ``output_dir``, ``model``, ``ema``,
      ``optimizer``, ``train_loader``, ``val_loader``, ``train_inputs`` (callable on a batch), ``normalizer``,
      ``skips``, ``monitor``, ``checkpoints``;
    - the record: ``epoch_summary`` (this epoch's, once it ended) and ``history``.

    What hooks may call: :meth:`add_results`, :meth:`save_checkpoint`, :meth:`export_state`,
    :meth:`check_finite`, :meth:`epoch_means` and :meth:`stop_requested`.
    """

    def __init__(self, cfg: CfgNode, dist: DistInfo | None = None):
        super().__init__()
        check_config(cfg)  # a config built in code is checked too, before any data is read
        if cfg.MODEL.ARCH not in available_archs():
            raise ConfigError(f"MODEL.ARCH: {cfg.MODEL.ARCH!r} is not one of {', '.join(available_archs())}")
        backends(cfg)  # DATA.DECODING_BACKEND and FALLBACK_BACKEND name registered backends, checked before any data
        self.dist = dist or init_distributed(cfg.TRAIN.DEVICE)
        self.device = self.dist.device
        self.num_workers = resolve_num_workers(cfg.DATA_LOADER.NUM_WORKERS)
        if self.device.type == "cpu":
            limit_cpu_threads(self.num_workers, self.dist.world_size)
        seed_everything(cfg.SEED, cfg.TRAIN.DETERMINISTIC)
        self.config_text, self.arch, self.output_dir = cfg.dump(), cfg.MODEL.ARCH, cfg.OUTPUT_DIR
        self.class_names = load_class_names_for(cfg)
        self.model = self.build_model(cfg)
        self.ema = ModelEma(self.model, cfg.SOLVER.EMA_DECAY) if cfg.SOLVER.EMA_DECAY > 0 else None
        self.amp_dtype = autocast_dtype(cfg.TRAIN.MIXED_PRECISION, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        # Where augmentation runs, decided once: the train loader's batches and the train inputs both follow it.
        self.augment_on_device = augmentation_on_device(cfg)
        self.train_inputs = self.build_train_inputs(cfg)
        self.normalizer = self.train_inputs.normalizer  # validation normalises alike
        self.skips = SkipTracker()
        self.monitor = Monitor(cfg.OUTPUT_DIR, self.dist.is_main, tensorboard="tensorboard" in cfg.TRAIN.LOGGERS)
        self.checkpoints = CheckpointManager(os.path.join(cfg.OUTPUT_DIR, "checkpoints"), cfg.TRAIN.KEEP_CHECKPOINTS)
        self.last_saved: tuple[int, int] | None = None  # (epochs, iterations) of the last checkpoint written
        self._resumed_epoch: dict | None = None  # running sums of a mid-epoch checkpoint
        if cfg.TRAIN.ENABLE:
            self._build_training(cfg)

    # ------------------------------------------------------------------ builders
    def build_model(self, cfg: CfgNode) -> nn.Module:
        """The model on its device: fine-tuning weights loaded, SyncBN under DDP, channels-last if asked."""
        model = build_model(cfg).to(self.device)
        if cfg.TRAIN.CHECKPOINT_FILE:
            load_weights(model, cfg.TRAIN.CHECKPOINT_FILE, strict=False)  # fine-tuning: a new head may differ
        if cfg.TRAIN.SYNC_BN and self.dist.distributed:
            if self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:  # torch's SyncBatchNorm raises on CPU tensors
                logger.warning("TRAIN.SYNC_BN needs CUDA; on %s every process keeps its own BN statistics",
                               self.device.type)
        if cfg.TRAIN.CHANNELS_LAST:
            model = model.to(memory_format=torch.channels_last_3d)
        return model

    def build_train_loader(self, cfg: CfgNode) -> DataLoader:
        """Training batches: augmented clips, or crops with their draws when ``self.augment_on_device``."""
        return build_loader(cfg, "train", rank=self.dist.rank, world_size=self.dist.world_size,
                            augment_on_device=self.augment_on_device)

    def build_train_inputs(self, cfg: CfgNode) -> TrainInputs:
        """A training batch -> the model's input on the device; it follows ``self.augment_on_device`` like
        :meth:`build_train_loader` (an override of one must keep to it, or the first step says they disagree)."""
        return build_train_inputs(cfg, self.device, cfg.TRAIN.CHANNELS_LAST, self.augment_on_device)

    def build_val_loader(self, cfg: CfgNode) -> DataLoader:
        return build_loader(cfg, "val", multi_view=False, rank=self.dist.rank, world_size=self.dist.world_size)

    def build_optimizer(self, cfg: CfgNode) -> torch.optim.Optimizer:
        return build_optimizer(self.model, self.lr, cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.NESTEROV)

    def build_scheduler(self, cfg: CfgNode) -> torch.optim.lr_scheduler.LRScheduler:
        total = cfg.SOLVER.MAX_EPOCH * self.steps_per_epoch
        return build_scheduler(self.optimizer, total, round(cfg.SOLVER.WARMUP_EPOCHS * self.steps_per_epoch))

    def build_criterion(self, cfg: CfgNode) -> nn.Module:
        return nn.CrossEntropyLoss(label_smoothing=cfg.SOLVER.LABEL_SMOOTHING)

    def build_hooks(self, cfg: CfgNode) -> list[HookBase | None]:
        """EMA, precise BN, validation, checkpoints, the progress line and metrics, the trackers of TRAIN.LOGGERS,
        then the preemption handler (in that order), plus the crash injection of :mod:`rs3d.engine.hooks.debug`
        when its variable is set."""
        return [
            RankSeedHook(cfg.SEED, self.dist.rank) if self.dist.distributed else None,
            EMAHook() if self.ema else None,
            PreciseBNHook(cfg.TRAIN.PRECISE_BN_BATCHES, cfg.TRAIN.EVAL_PERIOD) if cfg.TRAIN.PRECISE_BN else None,
            EvalHook(cfg.TRAIN.EVAL_PERIOD),
            CurvesHook(cfg.OUTPUT_DIR),
            CheckpointHook(self.checkpoints, cfg.TRAIN.CHECKPOINT_PERIOD,
                           os.path.join(cfg.OUTPUT_DIR, "model_final.pyth"), cfg.TRAIN.CHECKPOINT_PERIOD_ITERS),
            ProgressHook(cfg.TRAIN.LOG_PERIOD),
            *build_tracker_hooks(cfg.TRAIN.LOGGERS, os.path.basename(os.path.normpath(cfg.OUTPUT_DIR)),
                                 yaml.safe_load(self.config_text),
                                 cfg.OUTPUT_DIR if paths.is_local(cfg.OUTPUT_DIR) else None),
            InputBoundHook(cfg.TRAIN.BATCH_SIZE, self.num_workers, cfg.DATA_LOADER.PREFETCH_FACTOR,
                           self.augment_on_device),
            PreemptionHook(),
            CrashAtStepHook.from_environment(),
            CompileTimeHook(cfg.TRAIN.COMPILE_SCOPE) if cfg.TRAIN.COMPILE else None,
        ]

    def _build_training(self, cfg: CfgNode) -> None:
        self.train_loader = self.build_train_loader(cfg)
        self.val_loader = self.build_val_loader(cfg)
        logger.info("%s", describe_num_workers(cfg.DATA_LOADER.NUM_WORKERS))
        self.batch_size, self.max_epoch = cfg.TRAIN.BATCH_SIZE, cfg.SOLVER.MAX_EPOCH
        self.accumulation, self.grad_clip = cfg.SOLVER.ACCUMULATION_STEPS, cfg.SOLVER.GRAD_CLIP_NORM
        self.steps_per_epoch = len(self.train_loader) // self.accumulation
        if self.steps_per_epoch == 0:
            raise ConfigError(f"TRAIN.BATCH_SIZE x SOLVER.ACCUMULATION_STEPS is larger than the training split "
                              f"({len(self.train_loader.dataset)} videos)")
        self.iters_per_epoch = self.steps_per_epoch * self.accumulation
        self.global_batch = self.batch_size * self.dist.world_size * self.accumulation
        self.lr = scaled_lr(cfg.SOLVER.BASE_LR, cfg.SOLVER.REFERENCE_BATCH_SIZE, self.global_batch)
        self.optimizer = self.build_optimizer(cfg)
        self.scheduler = self.build_scheduler(cfg)
        # the config's recipe, put back over what a resumed optimizer / schedule / EMA state carries
        self.config_recipe = {"base_lrs": list(self.scheduler.base_lrs), "ema_decay": cfg.SOLVER.EMA_DECAY,
                              "groups": [{k: g[k] for k in ("weight_decay", "momentum", "nesterov") if k in g}
                                         for g in self.optimizer.param_groups]}
        self.criterion = self.build_criterion(cfg)
        net: nn.Module = self.model
        if self.dist.distributed:
            net = DistributedDataParallel(net, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None)
        self.net = compile_training_net(net, self.model, scope=cfg.TRAIN.COMPILE_SCOPE) if cfg.TRAIN.COMPILE else net
        self.register_hooks(self.build_hooks(cfg))
        self.loader_guard = LoaderGuard(self.train_loader, os.path.join(cfg.OUTPUT_DIR, "crashed_videos.txt"),
                                        stop_requested=self.stop_requested)
        if cfg.TRAIN.AUTO_RESUME:
            found = self.checkpoints.load_latest()
            if found:
                self.resume(*found)

    # ------------------------------------------------------------------ state
    def state_dict(self, epoch: int, iteration: int = 0) -> dict:
        """Everything needed to continue exactly after ``epoch`` completed epochs and ``iteration`` loader batches
        of the next one (then with the epoch's running sums; taken at an optimizer step boundary)."""
        mid_epoch = {"iter": iteration, "epoch_sums": {
            "bad": self._bad.cpu(), "correct": self._correct.cpu(), "loss_sum": self._loss_sum.cpu(),
            "seen": self._seen, "skips": self.skips.epoch_skips}} if iteration else {}
        return {**mid_epoch,
            "model": self.model.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "epoch": epoch, "step": self.step, "hooks": self.hook_states(),
            "rng": rng_state(), "config": self.config_text, "class_names": self.class_names,
            "arch": self.arch, "history": self.history,
        }

    def save_checkpoint(self, iteration: int = 0, is_best: bool = False, best_only: bool = False) -> str | None:
        """Write the run's state on the main process: after ``epoch + 1`` epochs, or ``iteration`` batches into the
        current epoch (``best_only``: as ``checkpoint_best.pyth`` alone). Returns the path (None on other ranks).
        Every checkpoint (epoch, mid-epoch, preemption, best) passes here: a state holding NaN/Inf stops the run
        instead (on every rank: their weights agree)."""
        done = self.epoch if iteration else self.epoch + 1
        state = self.state_dict(done, iteration)
        self.check_finite_state(state)
        if not self.dist.is_main:
            return None
        if best_only:
            return self.checkpoints.save_best(state)
        path = self.checkpoints.save(done, state, is_best, iteration)
        self.last_saved = (done, iteration)
        return path

    def check_finite_state(self, state: dict) -> None:
        """Stop with :class:`NonFiniteStateError` if the model, EMA or optimizer state in ``state`` (a checkpoint
        or the export) holds a NaN or Inf (one fused reduction, ``rs3d.checkpoint.finite``)."""
        bad = non_finite_parts(state)
        if bad:
            latest = self.checkpoints.latest() or "none written yet"
            raise NonFiniteStateError(
                f"the {', '.join(bad)} state became NaN/Inf by step {self.step} (epoch {self.epoch + 1}, iteration "
                f"{self.iter + 1}); nothing was written and earlier checkpoints are intact, the newest is {latest} "
                f"(try a lower SOLVER.BASE_LR, SOLVER.GRAD_CLIP_NORM or TRAIN.MIXED_PRECISION bf16)")

    def resume(self, path: str, state: dict | None = None) -> None:
        """Restore a checkpoint written by :meth:`state_dict` (weights, optimiser, schedule, RNGs, and for a
        mid-epoch one the position in the epoch). It is loaded on the CPU: RNG states must stay there, and
        ``load_state_dict`` copies tensors to the model's device anyway."""
        state = load_checkpoint(path, "cpu") if state is None else state
        self.model.load_state_dict(state["model"])
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and not state["scaler"]:  # fp16 now, bf16/fp32 before: a fresh loss scale
            logger.info("the checkpoint has no fp16 loss scale (trained without fp16): starting a fresh one")
        else:
            self.scaler.load_state_dict(state["scaler"])
        self.apply_config_recipe()
        self.start_epoch, self.step = state["epoch"], state["step"]
        self.load_hook_states(hook_states_of(state))
        self.start_iter = int(state.get("iter", 0))
        self._resumed_epoch = state.get("epoch_sums")
        self.history = list(state.get("history", []))
        set_rng_state(state["rng"])
        at = f", iteration {self.start_iter}" if self.start_iter else ""
        logger.info("resumed from %s (epoch %d%s, step %d)", path, self.start_epoch, at, self.step)

    def apply_config_recipe(self) -> None:
        """Put the config's learning rate, weight decay, momentum and EMA decay back after a resume loaded the
        optimizer, schedule and EMA states, which carry the values they were built with. A rerun accepted with
        ``--allow-changes`` (recorded in ``config_history.jsonl``) trains with the new values from its first step;
        the schedule's position is kept (a new base LR rescales the current one). Unchanged values are left
        untouched, so a plain resume stays bit-identical."""
        recipe, base_lrs, changed = self.config_recipe, self.scheduler.base_lrs, []
        for i, (group, new_base, new) in enumerate(zip(self.optimizer.param_groups, recipe["base_lrs"],
                                                       recipe["groups"])):
            if new_base != base_lrs[i]:
                changed.append(f"base LR {base_lrs[i]:.6g} -> {new_base:.6g}")
                group["lr"] = group["lr"] * new_base / base_lrs[i] if base_lrs[i] else new_base
                group["initial_lr"] = base_lrs[i] = new_base
            for key, value in new.items():
                if group.get(key) != value:
                    changed.append(f"{key} {group.get(key)} -> {value}")
                    group[key] = value
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        if self.ema and self.ema.decay != recipe["ema_decay"]:
            changed.append(f"EMA decay {self.ema.decay} -> {recipe['ema_decay']}")
            self.ema.decay = recipe["ema_decay"]
        if changed:
            logger.info("recipe from the config, not the checkpoint: %s", "; ".join(dict.fromkeys(changed)))

    def export_model(self) -> nn.Module:
        """The model that is exported and tested: the EMA model when EMA is on."""
        return self.ema.module if self.ema else self.model

    def export_state(self) -> dict:
        """What ``model_final.pyth`` holds: the exported weights (``weights`` says whether they are the EMA), the
        config and the class names (checked finite)."""
        state = {"model": self.export_model().state_dict(), "weights": "ema" if self.ema else "raw",
                 "config": self.config_text, "class_names": self.class_names, "arch": self.arch}
        self.check_finite_state(state)
        return state

    # ------------------------------------------------------------------ the loop
    def train(self) -> dict:
        """Train from ``start_epoch`` to SOLVER.MAX_EPOCH, validating and checkpointing on schedule."""
        logger.info("training %s: %d videos, global batch %d, LR %.4g, %d steps/epoch, %d epochs on %s",
                    self.arch, len(self.train_loader.dataset), self.global_batch, self.lr,
                    self.steps_per_epoch, self.max_epoch, self.device)
        summary = super().train()
        logger.info("skipped %d unreadable training/validation samples in total", self.skips.total_skips)
        return summary

    def cleanup(self, failure: BaseException | None) -> None:
        """Shut the loader workers down (at once after a second Ctrl-C) and bring the log and metrics files up to
        date on their storage."""
        try:
            guard = getattr(self, "loader_guard", None)
            if guard is not None:
                guard.close(at_once=isinstance(failure, KeyboardInterrupt))
            val = getattr(self, "val_loader", None)
            iterator = getattr(val, "_iterator", None)
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):  # persistent validation workers
                iterator._shutdown_workers()
                val._iterator = None
        finally:
            self.monitor.sync()

    def epoch_batches(self) -> Iterable[ClipBatch]:
        """The epoch's training batches (a whole number of accumulation groups) from ``start_iter``; resets the
        epoch's meters (or restores them from a mid-epoch checkpoint)."""
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        # Device-side sums: reading them forces a GPU sync, so that happens only on log steps.
        self._bad = torch.zeros((), dtype=torch.bool, device=self.device)
        self._correct = torch.zeros((), device=self.device)
        self._loss_sum = torch.zeros((), device=self.device)
        self._seen = 0
        if self.start_iter and self._resumed_epoch:  # continue the epoch's running sums
            sums, self._resumed_epoch = self._resumed_epoch, None
            self._bad, self._correct, self._loss_sum = (sums[k].to(self.device) for k in ("bad", "correct",
                                                                                         "loss_sum"))
            self._seen, self.skips.epoch_skips = sums["seen"], sums["skips"]
        # The loader restarts at the first batch not yet trained on, also after a DataLoader worker died.
        yield from self.loader_guard.batches(self.epoch, self.start_iter, self.iters_per_epoch)

    def run_step(self, batch: ClipBatch) -> None:
        """Forward and backward one loader batch; an optimizer step at the end of each accumulation group."""
        self.skips.update(batch["failures"])
        videos, labels = self.train_inputs(batch), batch["label"].to(self.device, non_blocking=True)
        self.stepped = (self.iter + 1) % self.accumulation == 0
        sync = contextlib.nullcontext() if self.stepped or not self.dist.distributed else self.net.no_sync()
        with sync:
            with autocast(self.device, self.amp_dtype):
                logits = self.net(videos)
            loss = self.criterion(logits.float(), labels)
            self.scaler.scale(loss / self.accumulation).backward()
        self._bad |= ~torch.isfinite(loss.detach())
        self._correct += (logits.detach().argmax(1) == labels).sum()
        self._seen += len(labels)
        self._loss_sum += loss.detach() * len(labels)
        if self.stepped:
            self.optimizer_step()

    def optimizer_step(self) -> None:
        """Clip (if asked), step the optimizer through the grad scaler, advance the LR schedule."""
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    def epoch_means(self) -> tuple[float, float]:
        """Mean training loss and top-1 (as a fraction) so far this epoch."""
        seen = max(1, self._seen)
        return float(self._loss_sum) / seen, float(self._correct) / seen

    def check_finite(self) -> None:
        """Stop with :class:`NonFiniteLossError` if any loss so far this epoch was NaN/Inf."""
        if bool(self._bad):
            latest = self.checkpoints.latest() or "none written yet"
            raise NonFiniteLossError(f"loss became NaN/Inf in epoch {self.epoch + 1} by iteration {self.iter + 1} "
                                     f"(step {self.step}); stopping. Last good checkpoint: {latest} (try a lower "
                                     f"SOLVER.BASE_LR, "
                                     f"SOLVER.GRAD_CLIP_NORM or TRAIN.MIXED_PRECISION bf16)")

    def end_epoch(self) -> dict:
        """Final NaN check, BN statistics shared across ranks, the epoch's training summary."""
        self.check_finite()
        if self.dist.distributed:
            self._sync_buffers()
        skipped = self.skips.end_epoch()
        if skipped:
            logger.warning("epoch %d: %d unreadable videos were replaced by others (each logged once above)",
                           self.epoch + 1, skipped)
        loss, accuracy = self.epoch_means()
        return {"epoch": self.epoch + 1, "train_loss": loss, "train_top1": 100.0 * accuracy,
                "skipped_videos": skipped}

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's BN statistics (local batches move them apart), so ranks stay identical."""
        modules = [self.model] + ([self.ema.module] if self.ema else [])
        for module in modules:
            for buffer in module.buffers():
                torch.distributed.broadcast(buffer, 0)
