"""Stopping cleanly when a cluster takes the machine away or a user presses Ctrl-C: on SIGTERM, SIGUSR1, SIGHUP or
SIGINT the run finishes the current optimizer step, writes a mid-epoch checkpoint and exits, with
:data:`PREEMPTED_EXIT_CODE` (75), which a scheduler can requeue on, or for Ctrl-C with :data:`INTERRUPTED_EXIT_CODE`
(130, the shell's code for SIGINT); the next run resumes from that checkpoint exactly. A second Ctrl-C quits at once
(KeyboardInterrupt, nothing written), as does one after another stop signal. A stop that arrives while an epoch
ends (validation) is honoured there.

Under DDP every rank agrees to stop at the same step through an all-reduce of the stop flag, launched after each
optimizer step and read one step later: the host then waits only for the GPU to finish the previous step while the
current one is already queued, so checking never leaves the GPU idle (a per-step ``.item()`` on the fresh result
would), at the price of stopping one step later.
"""
from __future__ import annotations

import logging
import signal
import threading

import torch

from rs3d.engine.hooks.base import HookBase
from rs3d.utils.errors import RunStoppedError

logger = logging.getLogger("rs3d")

# EX_TEMPFAIL (sysexits.h): "temporary failure, the user is invited to retry".
PREEMPTED_EXIT_CODE = 75
# 128 + SIGINT: what a shell reports for a command ended by Ctrl-C.
INTERRUPTED_EXIT_CODE = 130
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP, signal.SIGINT)


class PreemptedError(RunStoppedError):
    """The run stopped on a signal after writing a checkpoint; rerunning the same command continues it."""

    exit_code = PREEMPTED_EXIT_CODE
    prefix = "stopped"

    def __init__(self, message: str, exit_code: int = PREEMPTED_EXIT_CODE):
        super().__init__(message)
        self.exit_code = exit_code


class PreemptionHook(HookBase):
    """Turns SIGTERM/SIGUSR1/SIGHUP/SIGINT into a checkpoint at the next optimizer step boundary (or at the end of
    the epoch under way) and a clean stop; a SIGINT while already stopping (a second Ctrl-C) raises
    KeyboardInterrupt at once.

    The handlers only set a flag (and log a line); they are installed for the length of ``train()`` and the
    previous handlers are restored when it ends, however it ends (``TrainerBase.train``'s ``finally``). Loader
    workers ignore signals sent to the whole process group (``rs3d.data.workers``), so such a signal does not kill
    them before the step ends.
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
        self._restore()
        if self._pending is not None:
            self._read_pending()  # never leave a collective unwaited

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGINT and self.received is not None:
            self._restore()
            raise KeyboardInterrupt  # Ctrl-C while already stopping: quit now
        if self.received is None:
            self.received = name
            again = "; Ctrl-C again quits at once without a checkpoint" if signum == signal.SIGINT else ""
            logger.warning("%s received: finishing the current step, then writing a checkpoint and stopping%s", name,
                           again)

    @property
    def exit_code(self) -> int:
        return INTERRUPTED_EXIT_CODE if self.received == "SIGINT" else PREEMPTED_EXIT_CODE

    def after_step(self) -> None:
        t = self.trainer
        if t.stepped and self._agreed_stop():
            self._stop(t.save_checkpoint(iteration=t.iter + 1), f"after step {t.step} (epoch {t.epoch + 1}, "
                                                                 f"iteration {t.iter + 1})")

    def after_epoch(self) -> None:
        t = self.trainer
        if not self._agreed_stop(at_once=True):
            return
        saved = t.last_saved == (t.epoch + 1, 0)  # CheckpointHook wrote this epoch's checkpoint already
        path = t.checkpoints.path_for(t.epoch + 1) if saved else t.save_checkpoint()
        self._stop(path if t.dist.is_main else None, f"after step {t.step} (the end of epoch {t.epoch + 1})")

    def _stop(self, path: str | None, where: str) -> None:
        t = self.trainer
        if t.dist.distributed:
            torch.distributed.barrier()  # no rank exits (and gets the job torn down) before the file is written
        code = self.exit_code
        self.after_train()
        written = f"{path}" if path else "rank 0's checkpoint"
        raise PreemptedError(f"{self.received or 'another rank received a stop signal'}: stopped {where} and wrote "
                             f"{written}; run the same command again to continue", code)

    def _agreed_stop(self, at_once: bool = False) -> bool:
        """Whether any rank received a stop signal; under DDP the answer reduced after the previous optimizer step,
        which every rank reads at the same step (``at_once``: reduced now, blocking, as at an epoch's end)."""
        if not self.trainer.dist.distributed:
            return self.received is not None
        stop = self._read_pending()
        if at_once:
            flag = torch.tensor([float(stop or self.received is not None)], device=self.trainer.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            return bool(flag[0] > 0)
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
