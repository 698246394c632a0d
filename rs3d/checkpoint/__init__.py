"""Checkpoints: atomic saving, safe loading, the run folder's retention, RNG state and weight loading."""

from rs3d.checkpoint.io import CheckpointError, load_checkpoint, save_atomic
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.checkpoint.rng import rng_state, set_rng_state
from rs3d.checkpoint.weights import exported_state, load_weights

__all__ = ["CheckpointError", "CheckpointManager", "exported_state", "load_checkpoint", "load_weights",
           "rng_state", "save_atomic", "set_rng_state"]
