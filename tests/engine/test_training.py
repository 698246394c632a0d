"""End-to-end training on a tiny toy dataset: exact resume after SIGKILL, DDP, NaN stop, learning."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
from conftest import ROOT, TINY, tiny_cfg, train_cmd

from rs3d.checkpoint import load_checkpoint
from rs3d.engine import NonFiniteLossError, PreciseBNHook, Trainer
from rs3d.evaluation import run_test
from rs3d.utils.distributed import DistInfo


def final_weights(out):
    return load_checkpoint(os.path.join(out, "checkpoints", "checkpoint_epoch_00003.pyth"))


@pytest.mark.slow
def test_sigkill_and_resume_ends_with_identical_weights(toy_dir, tmp_path):
    """Killed mid-epoch (after a TRAIN.CHECKPOINT_PERIOD_ITERS checkpoint), resumed: the same remaining samples in
    the same order, bit-exactly."""
    opts = ["SOLVER.MAX_EPOCH", "3", "DATA_LOADER.NUM_WORKERS", "1", "TRAIN.CHECKPOINT_PERIOD_ITERS", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    straight = tmp_path / "straight"
    subprocess.run(train_cmd(toy_dir, straight, *opts), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(toy_dir, killed, *opts), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = killed / "checkpoints" / "checkpoint_epoch_00001_iter_0000001.pyth.sha256"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists() and not (killed / "checkpoints" / "checkpoint_epoch_00003.pyth").exists()
    resumed = subprocess.run(train_cmd(toy_dir, killed, *opts), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr and "_iter_" in resumed.stderr.split("resumed from")[1].split()[0]
    a, b = final_weights(straight), final_weights(killed)
    for part in ("model", "optimizer"):
        sa, sb = a[part], b[part]
        if part == "optimizer":
            sa, sb = {k: v["momentum_buffer"] for k, v in sa["state"].items()}, \
                {k: v["momentum_buffer"] for k, v in sb["state"].items()}
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{part} {key} differs after resume"
    for key, value in a["ema"]["module"].items():
        assert torch.equal(value, b["ema"]["module"][key])
    assert a["step"] == b["step"] and a["history"] == b["history"]


def _ddp_worker(rank, toy_dir, out, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    cfg = tiny_cfg(toy_dir, out, "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "4")
    trainer = Trainer(cfg, DistInfo(rank, 2, rank, torch.device("cpu")))
    trainer.train()
    summary = run_test(cfg, trainer.export_model(), trainer.class_names, trainer.dist, None)
    torch.save({"model": trainer.model.state_dict(), "steps": trainer.step, "test": summary},
               os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_ranks_identical(toy_dir, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(toy_dir, str(tmp_path), port), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == 3  # 24 videos / (4 per rank x 2 ranks)
    for key in r0["model"]:
        assert torch.equal(r0["model"][key], r1["model"][key]), key
    assert r0["test"] == r1["test"] and r0["test"]["num_videos"] == 8  # every test video once, padding dropped
    assert (tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth").exists()


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(toy_dir, tmp_path):
    cfg = tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "1")
    Trainer(cfg).train()
    good = tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth"
    before = good.read_bytes()
    cfg = tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2")
    trainer = Trainer(cfg)
    assert trainer.start_epoch == 1
    real = trainer.criterion
    trainer.criterion = lambda logits, labels: real(logits, labels) * float("nan")
    with pytest.raises(NonFiniteLossError, match="NaN/Inf in epoch 2.*checkpoint_epoch_00001"):
        trainer.train()
    assert good.read_bytes() == before
    names = sorted(n for n in os.listdir(tmp_path / "checkpoints") if not n.endswith(".sha256"))
    assert names == ["checkpoint_best.pyth", "checkpoint_epoch_00001.pyth"]


@pytest.mark.slow
def test_cli_reports_nan_and_bad_config(toy_dir, tmp_path, capsys):
    """The command's own error handling, in process (the pty tests run the script itself)."""
    from rs3d.commands import base, train

    def run(*opts):
        argv = train_cmd(toy_dir, tmp_path, *opts)[2:]  # drop the interpreter and the script
        with pytest.raises(SystemExit) as exit_info:
            base.run(lambda: train.main(argv))
        return exit_info.value.code, capsys.readouterr().err

    code, err = run("SOLVER.BASE_RL", "1")
    assert code == 2 and "SOLVER.BASE_RL" in err and "Traceback" not in err
    code, err = run("SOLVER.MAX_EPOCH", "1", "SOLVER.BASE_LR", "1e30", "SOLVER.WARMUP_EPOCHS", "0")
    assert code == 3 and "loss became NaN/Inf" in err


def test_outputs_of_a_run(toy_dir, tmp_path):
    cfg = tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "1")
    trainer = Trainer(cfg)
    trainer.train()
    summary = run_test(cfg, trainer.export_model(), trainer.class_names, trainer.dist, None)
    assert summary["num_videos"] == 8 and 0 <= summary["top1"] <= 100
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {r["split"] for r in lines} >= {"train", "train_epoch", "val", "val_ema"}
    assert all("loss" in r and "lr" in r and "clips_per_s" in r for r in lines if r["split"] == "train")
    predictions = open(tmp_path / "predictions_val.csv").read().splitlines()
    assert len(predictions) == 9 and "move_left" in "".join(predictions)
    final = load_checkpoint(str(tmp_path / "model_final.pyth"))
    assert final["class_names"][0] == "move_left" and "fc.weight" in final["model"]
    assert os.listdir(tmp_path / "tensorboard")


@pytest.mark.slow
def test_label_smoothing_accumulation_and_precise_bn(toy_dir, tmp_path):
    cfg = tiny_cfg(toy_dir, tmp_path, "SOLVER.ACCUMULATION_STEPS", "2", "TRAIN.BATCH_SIZE", "4",
                   "TRAIN.PRECISE_BN", "True", "TRAIN.PRECISE_BN_BATCHES", "200", "SOLVER.MAX_EPOCH", "1")
    trainer = Trainer(cfg)
    assert trainer.global_batch == 8 and trainer.steps_per_epoch == 3  # 24 videos / (4 x 2)
    assert trainer.lr == pytest.approx(0.4 * 8 / 64)
    logits, labels = torch.randn(5, 8), torch.tensor([0, 3, 7, 1, 1])
    logp = torch.log_softmax(logits, dim=1)
    manual = (0.9 * -logp[torch.arange(5), labels] + 0.1 * -logp.mean(dim=1)).mean()
    torch.testing.assert_close(trainer.criterion(logits, labels), manual)
    before = trainer.model.stem.bn1.running_mean.clone()
    hook = next(h for h in trainer.hooks if isinstance(h, PreciseBNHook))
    hook.update_bn_stats()  # 200 asked, the split has 6 batches: one pass (fvcore would assert)
    assert not torch.equal(before, trainer.model.stem.bn1.running_mean)
    trainer.train()
    assert trainer.step == 3


@pytest.mark.slow
def test_test_net_cli_uses_the_exported_weights(toy_dir, tmp_path):
    cfg = tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "1")
    Trainer(cfg).train()
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools/test_net.py"), "--cfg",
                          os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"), *TINY, "DATA.PATH_TO_DATA_DIR", toy_dir,
                          "OUTPUT_DIR", str(tmp_path), "TEST.SPLIT", "test"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "model_final.pyth" in run.stdout and "| test " in run.stdout
    assert (tmp_path / "confusion_test.csv").read_text().startswith("true\\pred,move_left")


@pytest.mark.slow
def test_toy_run_learns_motion(trained_toy):
    """A shortened version of the README's main job: well above chance (12.5%) after ~40 s of CPU training."""
    summary = trained_toy["summary"]
    assert summary["val_ema_top1"] >= 40.0 and summary["val_top1"] >= 40.0, summary
    assert trained_toy["test"]["top1"] >= 40.0
