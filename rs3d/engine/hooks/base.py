"""``HookBase``, the moments of a run a hook can act at, and the read-only view of the trainer that hooks get.

A hook keeps its own state (the progress hook its meters, the checkpoint hook the best score) and, if that state
must survive a resume, returns it from :meth:`HookBase.state_dict`: the trainer's checkpoint stores it under the
hook's :attr:`~HookBase.name` and gives it back through :meth:`HookBase.load_state_dict` (detectron2's
``engine/train_loop.py`` does the same). Hooks read the trainer; they never set its attributes
(:class:`TrainerView` refuses), and the attributes they may read or call are listed in the ``Trainer`` docstring.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rs3d.engine.trainer import Trainer


class HookBase:
    """Override the moments you need; every method is a no-op by default.

    Order within one moment is the order of registration. ``after_step`` runs after every loader batch
    (micro-batch); ``trainer.stepped`` says whether that batch ended with an optimizer step. ``after_train`` runs
    however training ends (finished, stopped by a signal, an error); ``trainer.completed`` tells which.
    """

    trainer: Trainer

    @property
    def name(self) -> str:
        """The key of this hook's state in a checkpoint (the class name; two stateful hooks need two names)."""
        return type(self).__name__

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """What must survive a resume (empty: nothing, the default); written into every checkpoint, so plain values
        only (numbers, strings, tensors, lists, dicts): checkpoints are loaded weights-only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called on resume, before ``before_train``)."""


class TrainerView:
    """What ``hook.trainer`` is: reads go to the trainer, setting an attribute raises. Holds the trainer weakly,
    so trainer and hooks form no reference cycle."""

    __slots__ = ("_trainer",)

    def __init__(self, trainer: object) -> None:
        object.__setattr__(self, "_trainer", weakref.proxy(trainer))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trainer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a hook does not set trainer attributes (tried trainer.{name}); keep the state in "
                             f"the hook (and its state_dict if it must survive a resume)")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)


def is_period(count: int, period: int, last: bool = False) -> bool:
    """True every ``period`` counts (1-based) and at the last one."""
    return last or (period > 0 and count % period == 0)
