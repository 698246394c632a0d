"""Stopping cleanly when a cluster takes the machine away: on SIGTERM or SIGUSR1 the run finishes the current
optimizer step, writes a mid-epoch checkpoint and exits with :data:`PREEMPTED_EXIT_CODE`, which a scheduler can
requeue on; the next run resumes from that checkpoint exactly. Under DDP every rank agrees to stop at the same step
through an all-reduce of the stop flag, launched after each optimizer step and read one step later: the host then
waits only for the GPU to finish the previous step while the current one is already queued, so checking never
leaves the GPU idle (a per-step ``.item()`` on the fresh result would), at the price of stopping one step later.
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
        self._pending: tuple[torch.Tensor, object, object] | None = None  # (flag on the host, CUDA event, work)

    def before_train(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def after_train(self) -> None:
        if self._pending is not None:
            self._read_pending()  # never leave a collective unwaited
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
        """Whether any rank received a stop signal; under DDP the answer reduced after the previous optimizer step,
        which every rank reads at the same step."""
        if not self.trainer.dist.distributed:
            return self.received is not None
        stop = self._read_pending()
        if not stop:
            self._launch()
        return stop

    def _launch(self) -> None:
        """Start the all-reduce (MAX) of this rank's flag; on CUDA queue its copy to pinned memory behind it."""
        device = self.trainer.device
        flag = torch.tensor([float(self.received is not None)], device=device)
        work = torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, async_op=True)
        if device.type != "cuda":
            self._pending = (flag, None, work)
            return
        work.wait()  # orders the current stream after the collective; the host does not wait
        host = torch.empty(1, pin_memory=True)
        host.copy_(flag, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending = (host, event, None)

    def _read_pending(self) -> bool:
        """The reduced flag of the last launch (False if none), waiting for it where it is not there yet."""
        if self._pending is None:
            return False
        flag, event, work = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()
        if work is not None:
            work.wait()
        return bool(flag[0] > 0)
