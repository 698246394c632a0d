"""Training each config of a comparison under several seeds, with the same data and budget, reusing what is done.

Run folders are ``OUTPUT/<config name>/seed<k>`` trained by ``rs3d-train --cfg CONFIG OUTPUT_DIR ... SEED k``
(plus the user's overrides). A finished folder (final weights and test reports) is reused; an unfinished one is
handed to rs3d-train again, which resumes from its newest checkpoint. A folder written with a different budget
than the one requested is refused rather than silently mixed in.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence

import yaml

from rs3d.config import load_config
from rs3d.studies.budget import describe, differences
from rs3d.studies.runs import flatten, is_finished, read_config
from rs3d.utils import paths
from rs3d.utils.errors import UserInputError


class TrainingFailed(UserInputError):
    """A seed's rs3d-train exited non-zero; the comparison stops with the same exit status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def config_name(config_path: str) -> str:
    """The config's file name without extension: the run folder and table name of that config."""
    return os.path.splitext(os.path.basename(config_path))[0]


def seed_overrides(run_dir: str, seed: int, opts: Sequence[str]) -> list[str]:
    """The rs3d-train overrides of one seed: the user's overrides, then the run folder and the seed."""
    return [*opts, "OUTPUT_DIR", run_dir, "SEED", str(seed)]


def check_reusable(run_dir: str, config_path: str, overrides: list[str]) -> None:
    """Refuse a run folder whose config.yaml differs (in any compared key) from what would be trained now."""
    if not paths.isfile(os.path.join(run_dir, "config.yaml")):
        return
    wanted = flatten(yaml.safe_load(load_config(config_path, overrides).dump()))
    found = read_config(run_dir)
    diffs = differences({"requested": wanted, "in the folder": found}, [])
    if diffs:
        raise UserInputError(f"{run_dir}: written with a different config than requested: "
                             + "; ".join(describe(k, v) for k, v in diffs.items())
                             + "; remove the folder or choose another --output-dir")


def train_command(config_path: str, overrides: list[str]) -> list[str]:
    """The rs3d-train command line of one seed (this Python, so the same environment)."""
    return [sys.executable, "-m", "rs3d.commands.train", "--cfg", config_path, *overrides]


def train_seeds(configs: Sequence[str], output_root: str, seeds: int, opts: Sequence[str] = (),
                runner: Callable[[list[str]], int] | None = None, log: Callable[[str], None] = print
                ) -> dict[str, list[str]]:
    """Train (or reuse, or resume) ``seeds`` runs of each config; {config name: [run dirs]}.

    Seed-major order (seed 0 of every config, then seed 1, ...), so a comparison stopped early still has whole seeds.
    ``runner`` runs a command and returns its exit status (default: a subprocess, output passed through).
    """
    if seeds < 1:
        raise UserInputError(f"--seeds {seeds}: must be at least 1")
    names = [config_name(c) for c in configs]
    if len(set(names)) < len(names):
        raise UserInputError(f"configs with the same file name would share run folders: {' '.join(configs)}")
    runner = runner or (lambda cmd: subprocess.run(cmd, check=False).returncode)
    runs: dict[str, list[str]] = {name: [] for name in names}
    for seed in range(seeds):
        for config, name in zip(configs, names):
            run_dir = os.path.join(output_root, name, f"seed{seed}")
            overrides = seed_overrides(run_dir, seed, opts)
            check_reusable(run_dir, config, overrides)
            split = load_config(config, overrides).TEST.SPLIT
            if is_finished(run_dir, split):
                log(f"reusing {run_dir} (finished)")
            else:
                resumed = paths.isdir(os.path.join(run_dir, "checkpoints"))
                log(f"{'resuming' if resumed else 'training'} {name} seed {seed} in {run_dir}")
                status = runner(train_command(config, overrides))
                if status != 0:
                    raise TrainingFailed(f"training {run_dir} failed (exit {status}); see {run_dir}/log.txt; "
                                         "the same command resumes it", status)
                if not is_finished(run_dir, split):
                    raise UserInputError(f"{run_dir}: rs3d-train exited 0 but wrote no test_{split}.json / "
                                         f"predictions_{split}.csv (TEST.ENABLE off?)")
            runs[name].append(run_dir)
    return runs
