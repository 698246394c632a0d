"""The equal-budget check of a comparison: every run must share its data, schedule, clip, crop, test views,
precision and the rest of the recipe, unless the user names a key whose difference is the point.

Keys under MODEL. are the architecture being compared and may differ between configs, except MODEL.NUM_CLASSES
(the data) and MODEL.INIT.* (a pretrained start is a bigger budget, not an architecture). Runs of one config
must agree on every key but SEED. Keys that only say how a run was executed (logging, checkpoints, loader
workers, compilation, memory layout) are not compared.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rs3d.studies.runs import RunResult, test_split
from rs3d.utils.errors import UserInputError

NOT_COMPARED = ("OUTPUT_DIR", "SEED", "DATA_LOADER", "TRAIN.LOG_PERIOD", "TRAIN.EVAL_PERIOD", "TRAIN.CHECKPOINT_PERIOD",
                "TRAIN.CHECKPOINT_PERIOD_ITERS", "TRAIN.KEEP_CHECKPOINTS", "TRAIN.AUTO_RESUME",
                "TRAIN.CHECKPOINT_FILE", "TRAIN.DIST_TIMEOUT_MINUTES", "TRAIN.COMPILE", "TRAIN.COMPILE_SCOPE",
                "TRAIN.CHANNELS_LAST", "TRAIN.DETERMINISTIC", "TRAIN.ENABLE", "TEST.ENABLE", "TEST.BATCH_SIZE",
                "TEST.CHECKPOINT_FILE", "MODEL.RESNET3D.CONV_IMPL", "MODEL.RESNET3D.FUSED_TAIL")
ARCHITECTURE = ("MODEL",)
NOT_ARCHITECTURE = ("MODEL.NUM_CLASSES", "MODEL.INIT")
# The keys a reader checks first; the report names them with their values (the JSON lists every held-equal key).
HEADLINE = ("DATA.PATH_TO_DATA_DIR", "MODEL.NUM_CLASSES", "SOLVER.MAX_EPOCH", "TRAIN.BATCH_SIZE", "DATA.NUM_FRAMES",
            "DATA.SAMPLING_RATE", "DATA.TRAIN_CROP_SIZE", "DATA.TEST_CROP_SIZE", "TEST.NUM_ENSEMBLE_VIEWS",
            "TEST.NUM_SPATIAL_CROPS", "TEST.SPLIT", "TRAIN.MIXED_PRECISION")


def under(key: str, prefixes: Sequence[str]) -> bool:
    """True when ``key`` is one of ``prefixes`` or lies under one (``SOLVER`` covers ``SOLVER.BASE_LR``)."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


@dataclass
class BudgetCheck:
    """What the check found: keys held equal (with values), keys that differ by design, the tested videos."""

    held_equal: dict
    differing: dict  # key -> {config: value}, for architecture keys and keys the user allowed
    allowed: list[str]
    videos: list[str]
    class_names: list[str]
    split: str


def describe(key: str, values: dict) -> str:
    return f"{key} (" + ", ".join(f"{name}: {value!r}" for name, value in values.items()) + ")"


def differences(named_configs: dict[str, dict], skip: Sequence[str]) -> dict:
    """{key: {name: value}} for every compared key whose value is not the same in all configs."""
    keys = sorted(set().union(*named_configs.values()))
    out = {}
    for key in keys:
        if under(key, NOT_COMPARED) or under(key, skip):
            continue
        values = {name: config.get(key) for name, config in named_configs.items()}
        if len(set(map(repr, values.values()))) > 1:
            out[key] = values
    return out


def check_equal_budget(groups: dict[str, list[RunResult]], allow: Sequence[str] = ()) -> BudgetCheck:
    """Refuse (UserInputError naming the keys) runs whose budgets differ; else say what was held equal."""
    every_key = set().union(*(run.config for runs in groups.values() for run in runs))
    unknown = [a for a in allow if not any(under(k, [a]) for k in every_key)]
    if unknown:
        raise UserInputError(f"--allow-different {' '.join(unknown)}: not a config key of these runs")
    for name, runs in groups.items():
        seeds = [run.seed for run in runs]
        if len(set(seeds)) < len(seeds):
            raise UserInputError(f"{name}: two runs have the same SEED ({', '.join(r.run_dir for r in runs)}); "
                                 "repeated seeds would understate the spread")
        within = differences({run.run_dir: run.config for run in runs}, allow)
        if within:
            raise UserInputError(f"runs of {name} differ in " + "; ".join(describe(k, v) for k, v in within.items())
                                 + "; runs of one config may differ only in SEED")
    firsts = {name: runs[0].config for name, runs in groups.items()}
    across = differences(firsts, allow)
    refused = {k: v for k, v in across.items() if not under(k, ARCHITECTURE) or under(k, NOT_ARCHITECTURE)}
    if refused:
        raise UserInputError("unequal budgets: the configs differ in " +
                             "; ".join(describe(k, v) for k, v in refused.items()) +
                             "; pass --allow-different KEY ... if that difference is the point")
    differing = differences(firsts, [])  # the architecture keys and those the user allowed
    first = next(iter(firsts.values()))
    held = {k: first.get(k) for k in sorted(every_key)
            if k not in differing and not under(k, NOT_COMPARED) and not under(k, allow)}
    videos, class_names = _check_reports(groups)
    return BudgetCheck(held, differing, list(allow), videos, class_names, test_split(first))


def _check_reports(groups: dict[str, list[RunResult]]) -> tuple[list[str], list[str]]:
    """The tested videos, class names and training steps, which must be the same in every run (the pairing needs
    the videos; equal steps under equal epochs and batch mean equally large training splits)."""
    runs = [run for group in groups.values() for run in group]
    reference = runs[0]
    videos = sorted(reference.correct)
    for run in runs[1:]:
        if run.correct.keys() != reference.correct.keys():
            only_a = len(reference.correct.keys() - run.correct.keys())
            only_b = len(run.correct.keys() - reference.correct.keys())
            raise UserInputError(f"{run.run_dir} and {reference.run_dir} were tested on different videos "
                                 f"({len(run.correct)} vs {len(reference.correct)}; {only_b} only in the first, "
                                 f"{only_a} only in the second): paired statistics need the same videos")
        if run.train_steps and reference.train_steps and run.train_steps != reference.train_steps:
            raise UserInputError(f"{run.run_dir} trained {run.train_steps} steps and {reference.run_dir} "
                                 f"{reference.train_steps} (metrics.jsonl): with equal epochs and batch, the "
                                 "training splits differ in size")
        if run.class_names and reference.class_names and run.class_names != reference.class_names:
            raise UserInputError(f"{run.run_dir} and {reference.run_dir} have different class names "
                                 f"(confusion_*.csv headers): they were trained on different data")
    return videos, reference.class_names
