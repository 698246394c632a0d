"""Stopping cleanly when a cluster takes the machine away: on SIGTERM or SIGUSR1 the run finishes the current
optimizer step, writes a mid-epoch checkpoint and exits with :data:`PREEMPTED_EXIT_CODE`, which a scheduler can
requeue on; the next run resumes from that checkpoint exactly. Under DDP every rank agrees, through an all-reduce
of the stop flag after each step, to stop at the same step.
"""
from __future__ import annotations

import logging
import signal
import threading

import torch

from rs3d.engine.hooks import HookBase
from rs3d.utils.errors import RunStoppedError

logger = logging.getLogger("rs3d")

# EX_TEMPFAIL (sysexits.h): "temporary failure, the user is invited to retry".
PREEMPTED_EXIT_CODE = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class PreemptedError(RunStoppedError):
    """The run stopped on a signal after writing a checkpoint; rerunning the same command continues it."""

    exit_code = PREEMPTED_EXIT_CODE
    prefix = "stopped"


class PreemptionHook(HookBase):
    """Turns SIGTERM/SIGUSR1 into a checkpoint at the next optimizer step boundary and a clean stop.

    The handlers only set a flag (signal-safe); they are installed for the length of ``train()`` and the previous
    handlers are restored afterwards. DataLoader workers forked meanwhile inherit them, so a signal sent to the
    whole process group does not kill the workers before the step ends.
    """

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS):
        self.signals, self.received = signals, None
        self._previous: dict[int, object] = {}

    def before_train(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def after_train(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame) -> None:
        self.received = signal.Signals(signum).name

    def after_step(self) -> None:
        t = self.trainer
        if not t.stepped or not self._agreed_stop():
            return
        path = t.save_checkpoint(iteration=t.iter + 1)
        if t.dist.distributed:
            torch.distributed.barrier()  # no rank exits (and gets the job torn down) before the file is written
        self.after_train()
        where = f"{path}" if path else "rank 0's checkpoint"
        raise PreemptedError(f"{self.received or 'another rank received a stop signal'}: stopped after step "
                             f"{t.step} (epoch {t.epoch + 1}, iteration {t.iter + 1}) and wrote {where}; run the "
                             f"same command again to continue")

    def _agreed_stop(self) -> bool:
        """Whether any rank received a stop signal (every rank gets the same answer at the same step)."""
        local = self.received is not None
        if not self.trainer.dist.distributed:
            return local
        flag = torch.tensor([float(local)], device=self.trainer.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())
