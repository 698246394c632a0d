"""Experiment trackers (TRAIN.LOGGERS): Weights & Biases in its offline mode receives exactly the scalars of
metrics.jsonl and TensorBoard, closes its run on a stop, continues the same run after a resume; bad or missing
loggers stop with one line."""
import glob
import json
import os
import signal
import struct
import zlib

import pytest
from conftest import tiny_cfg

from rs3d.config import ConfigError, load_config
from rs3d.config.checks import RULES
from rs3d.engine import HookBase, Trainer, TrainerBase
from rs3d.engine.hooks import TRACKERS, WandbHook
from rs3d.engine.hooks.preemption import PreemptedError
from rs3d.engine.monitor import Monitor
from rs3d.utils.distributed import DistInfo
from rs3d.utils.errors import UserInputError


def read_wandb_records(path):
    """The records of an offline run file (``run-<id>.wandb``), read with wandb's own protobuf messages. The file is
    a LevelDB-style log (wandb's reader left the Python package for its Go core): a 7-byte header (":W&B", magic,
    version), then 32 KiB blocks of chunks, each a 7-byte header (CRC-32 of type + data, length, type
    1 full / 2 first / 3 middle / 4 last) and its data. (wandb is pinned in requirements.txt: CI runs this.)"""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    records, pos, pending, block = [], 7, b"", 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            break
        chunk = data[pos + 7:pos + 7 + length]
        assert zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF == crc, f"corrupt chunk at byte {pos}"
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def history_rows(records):
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item
             if not (item.key or item.nested_key[0]).startswith("_")}
            for r in records if r.WhichOneof("record_type") == "history"]


def expected_rows(metrics_path):
    """What TensorBoard gets from each metrics.jsonl record: its numbers tagged split/key, plus the step axis."""
    rows = []
    for line in open(metrics_path):
        record = json.loads(line)
        numbers = {f"{record['split']}/{k}": v for k, v in record.items()
                   if k not in ("step", "split", "time") and isinstance(v, (int, float))}
        rows.append({"trainer/step": record["step"], **numbers})
    return rows


def run_files(wandb_dir, run_id=None):
    """The offline run files, once wandb's service process (which writes them) has shut down and closed them."""
    import wandb

    wandb.teardown()
    return sorted(glob.glob(os.path.join(wandb_dir, "wandb", f"offline-run-*-{run_id or '*'}", "run-*.wandb")))


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    folder = tmp_path / "wandb_dir"
    folder.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(folder))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_PROJECT", "rs3d-test")
    return str(folder)


class SignalAt(HookBase):
    def __init__(self, epoch, iteration):
        self.epoch, self.iteration = epoch, iteration

    def before_step(self):
        if (self.trainer.epoch, self.trainer.iter) == (self.epoch, self.iteration):
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.mark.slow
def test_wandb_gets_the_scalars_of_metrics_jsonl_and_tensorboard_across_a_stop_and_resume(toy_dir, tmp_path,
                                                                                            offline_wandb):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    opts = ["SOLVER.MAX_EPOCH", "2", "TRAIN.LOGGERS", "['tensorboard', 'wandb']"]
    first = Trainer(tiny_cfg(toy_dir, out, *opts))
    first.register_hooks([SignalAt(1, 1)])  # stops after the first step of epoch 2, with a checkpoint
    with pytest.raises(PreemptedError):
        first.train()
    first.monitor.close()
    [stopped] = run_files(offline_wandb)
    records = read_wandb_records(stopped)
    kinds = [r.WhichOneof("record_type") for r in records]
    assert "preempting" in kinds and kinds[-1] == "exit" and records[-1].exit.exit_code == 1  # closed on the stop
    run_id = records[kinds.index("run")].run.run_id
    assert records[kinds.index("run")].run.project == "rs3d-test" and records[kinds.index("run")].run.display_name \
        == "run"
    rows_before = history_rows(records)

    second = Trainer(tiny_cfg(toy_dir, out, *opts))  # resumes from the stop's checkpoint
    assert second.start_epoch == 1 and second.start_iter > 0
    second.train()
    second.monitor.close()
    files = run_files(offline_wandb, run_id)
    assert len(files) == 2, files  # the resumed training continued the same W&B run
    records = read_wandb_records(files[-1])
    assert records[-1].WhichOneof("record_type") == "exit" and records[-1].exit.exit_code == 0
    rows = rows_before + history_rows(records)

    expected = expected_rows(out / "metrics.jsonl")
    assert rows == expected  # the same rows, values and steps, in the same order
    assert {"train/loss", "val/top1", "val_ema/top1", "train_epoch/train_loss"} <= set().union(*rows)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for tag in ("train/loss", "val_ema/top1", "train_epoch/train_loss"):
        board = [(e.step, e.value) for e in events.Scalars(tag)]
        wandb_side = [(row["trainer/step"], row[tag]) for row in rows if tag in row]
        assert [s for s, _ in board] == [s for s, _ in wandb_side]
        assert [v for _, v in board] == pytest.approx([v for _, v in wandb_side], rel=1e-6)  # TB stores float32


def test_a_tracker_that_is_not_installed_stops_with_one_line(toy_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(WandbHook, "package", "rs3d_no_such_tracker_package")
    cfg = tiny_cfg(toy_dir, tmp_path, "TRAIN.LOGGERS", "['wandb']", "SOLVER.MAX_EPOCH", "1")
    with pytest.raises(UserInputError) as info:
        Trainer(cfg)
    message = str(info.value)
    assert info.value.exit_code == 2 and "\n" not in message
    assert message.startswith("TRAIN.LOGGERS: wandb is selected but") and "rs3d[trackers]" in message


def test_wandb_without_a_login_stops_with_one_line(toy_dir, tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no saved login
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    trainer = Trainer(tiny_cfg(toy_dir, tmp_path / "run", "TRAIN.LOGGERS", "['wandb']", "SOLVER.MAX_EPOCH", "1"))
    with pytest.raises(UserInputError) as info:
        trainer.train()
    message = str(info.value)
    assert message.startswith("TRAIN.LOGGERS: wandb could not start its run: ") and "\n" not in message
    assert "WANDB_MODE=offline" in message and trainer.step == 0


class Recording(WandbHook):
    """A WandbHook whose run is a list: what the monitor sends it, and how it was finished."""

    def open(self):
        self.run_id = "recorded"
        return []

    def write(self, step, scalars):
        self.run.append((step, scalars))

    def finish(self, run, completed, stopped):
        self.finished = (list(run), completed, stopped)


@pytest.mark.parametrize("rank", [0, 1])
def test_a_tracker_runs_on_rank_0_only_and_is_closed_when_training_ends(tmp_path, rank):
    class Loop(TrainerBase):
        def __init__(self):
            super().__init__()
            self.max_epoch, self.iters_per_epoch = 1, 2
            self.dist = DistInfo(rank, 2, rank)
            self.monitor = Monitor(str(tmp_path), self.dist.is_main, tensorboard=False)

        def epoch_batches(self):
            return iter(range(2))

        def run_step(self, batch):
            self.step += 1
            self.monitor.scalars(self.step, {"loss": 1.0 / self.step, "note": "text"}, "train")

    loop, hook = Loop(), Recording("run", {})
    loop.register_hooks([hook])
    loop.train()
    if rank == 0:
        assert hook.finished == ([(1, {"train/loss": 1.0}), (2, {"train/loss": 0.5})], True, False)
        assert hook.run is None and loop.monitor.writers == [] and hook.state_dict() == {"run_id": "recorded"}
    else:
        assert not hasattr(hook, "finished") and hook.state_dict() == {}


@pytest.mark.parametrize("value, problem", [
    ("['tensorboard', 'mlflow']", "'mlflow' is not one of tensorboard, wandb"),
    ("['wandb', 'wandb']", "names an entry twice"),
    ("wandb", "expects list"),
])
def test_bad_loggers_are_refused_at_load(value, problem):
    with pytest.raises(ConfigError, match="TRAIN.LOGGERS") as info:
        load_config(None, ["TRAIN.LOGGERS", value])
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_the_config_check_knows_every_tracker():
    assert RULES["TRAIN.LOGGERS"].values == TRACKERS


def test_tensorboard_can_be_left_out(toy_dir, tmp_path):
    trainer = Trainer(tiny_cfg(toy_dir, tmp_path, "TRAIN.LOGGERS", "[]", "TRAIN.ENABLE", "False"))
    trainer.monitor.scalars(1, {"loss": 1.0}, "train")
    trainer.monitor.close()
    assert not (tmp_path / "tensorboard").exists() and (tmp_path / "metrics.jsonl").exists()
