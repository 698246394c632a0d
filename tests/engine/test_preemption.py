"""The command-line tools as a cluster runs them: under a terminal with output piped (`| tee`), stopped by
SIGTERM and requeued, and restarted by torchrun after a worker crash (CPU, gloo, 2 processes)."""
import os
import pty
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from conftest import ROOT, TINY, tiny_cfg, train_cmd

from rs3d.checkpoint.io import load_checkpoint
from rs3d.models import build_model

ENV = dict(os.environ, OMP_NUM_THREADS="1")




def under_terminal(cmd, piped):
    """Start ``cmd`` with a pseudo-terminal on stdin and on the streams not in ``piped`` (others are pipes)."""
    master, slave = pty.openpty()
    streams = {name: subprocess.PIPE if name in piped else slave for name in ("stdout", "stderr")}
    proc = subprocess.Popen(cmd, stdin=slave, env=ENV, **streams)
    os.close(slave)
    seen = bytearray()

    def drain():  # a full terminal buffer would block the child
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            seen.extend(data)

    threading.Thread(target=drain, daemon=True).start()
    proc.terminal_output = seen
    return proc


@pytest.mark.slow
def test_tools_under_a_terminal_with_output_piped(toy_dir, tmp_path):
    """`train_net.py | tee run.log` from a terminal died with ENOTTY at its first progress line."""
    cfg = tiny_cfg(toy_dir, tmp_path)
    checkpoint = tmp_path / "model.pyth"
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.dump()}, checkpoint)
    video = os.path.join(toy_dir, "videos", "test", "move_left", "move_left_00000.mp4")
    runs = []
    for piped in (("stdout",), ("stderr",), ("stdout", "stderr")):
        name = "_".join(piped)
        runs.append(under_terminal(train_cmd(toy_dir, tmp_path / name, "SOLVER.MAX_EPOCH", "1", "TRAIN.LOG_PERIOD",
                                             "1"), piped))
        runs.append(under_terminal([sys.executable, os.path.join(ROOT, "tools/predict.py"), video, "--checkpoint",
                                    str(checkpoint)], piped))
    for proc in runs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, (proc.args, (err or b"")[-1500:], bytes(proc.terminal_output)[-1500:])


@pytest.mark.slow
def test_sigterm_stops_with_a_requeue_status_and_the_rerun_continues(toy_dir, tmp_path):
    opts = ["SOLVER.MAX_EPOCH", "4", "TRAIN.EVAL_PERIOD", "0"]
    proc = subprocess.Popen(train_cmd(toy_dir, tmp_path, *opts), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = tmp_path / "checkpoints" / "checkpoint_epoch_00001.pyth.sha256"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err[-2000:]  # EX_TEMPFAIL, README
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped: SIGTERM: stopped after step") and "checkpoint_epoch_" in last
    assert "Traceback" not in err
    again = subprocess.run(train_cmd(toy_dir, tmp_path, *opts), env=ENV, capture_output=True, text=True)
    assert again.returncode == 0 and "resumed from" in again.stderr, again.stderr[-2000:]


def torchrun(toy_dir, out, *extra_env):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--max-restarts", "1",
           "--standalone", "-m", "rs3d.commands.train", "--cfg",
           os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"), *TINY, "DATA.PATH_TO_DATA_DIR", toy_dir,
           "OUTPUT_DIR", str(out), "TEST.ENABLE", "False", "SOLVER.MAX_EPOCH", "2", "TRAIN.BATCH_SIZE", "4",
           "TRAIN.EVAL_PERIOD", "0", "TRAIN.CHECKPOINT_PERIOD_ITERS", "1"]
    env = dict(ENV, **dict(extra_env))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers, no orphans
        out, err = proc.communicate()
        pytest.fail(f"torchrun timed out: {err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_torchrun_restarts_a_crashed_worker_and_ends_with_the_same_weights(toy_dir, tmp_path):
    straight = torchrun(toy_dir, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    crashed = torchrun(toy_dir, tmp_path / "crashed", ("RS3D_DEBUG_CRASH_AT_STEP", "4"),
                       ("RS3D_DEBUG_CRASH_RANK", "1"))
    assert crashed.returncode == 0, crashed.stderr[-3000:]
    assert "rank 1 dies after step 4" in crashed.stderr and "resumed from" in crashed.stderr
    a, b = (load_checkpoint(str(tmp_path / run / "checkpoints" / "checkpoint_epoch_00002.pyth"))
            for run in ("straight", "crashed"))
    for part in ("model",):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), key
    for key, value in a["ema"]["module"].items():
        assert torch.equal(value, b["ema"]["module"][key]), key
    assert a["step"] == b["step"] == 6


def _signalled_rank_worker(rank, toy_dir, out, port):
    """Two gloo ranks; only rank 1 receives SIGUSR1 (after its 2nd step). Both must stop at the same step: the 3rd,
    since the flags reduced after step 2 are read after step 3 (no step waits for the reduction)."""
    from rs3d.engine import HookBase, Trainer
    from rs3d.engine.hooks.preemption import PreemptedError
    from rs3d.utils.distributed import DistInfo

    class SignalRankOne(HookBase):
        def after_step(self):
            if rank == 1 and self.trainer.stepped and self.trainer.step == 2:
                os.kill(os.getpid(), signal.SIGUSR1)

    class SignalledTrainer(Trainer):
        def build_hooks(self, cfg):
            return [SignalRankOne(), *super().build_hooks(cfg)]  # before the preemption hook, same step

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    cfg = tiny_cfg(toy_dir, out, "SOLVER.MAX_EPOCH", "2", "TRAIN.BATCH_SIZE", "2", "TRAIN.EVAL_PERIOD", "0")
    trainer = SignalledTrainer(cfg, DistInfo(rank, 2, rank, torch.device("cpu")))
    try:
        trainer.train()
        outcome = "finished"
    except PreemptedError as exc:
        outcome = str(exc)
    torch.save({"step": trainer.step, "outcome": outcome}, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_agree_to_stop_when_only_one_is_signalled(toy_dir, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_signalled_rank_worker, args=(toy_dir, str(tmp_path), port), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 3, (r0, r1)
    assert "another rank received a stop signal" in r0["outcome"] and "SIGUSR1" in r1["outcome"]
    written = [n for n in os.listdir(tmp_path / "checkpoints") if n.endswith(".pyth")]
    assert written and all("_iter_" in n for n in written), written  # a mid-epoch checkpoint at the stop


def test_stop_flag_is_read_one_step_after_its_reduction():
    """Under DDP the hook launches the reduction after a step and reads it after the next (gloo, one rank)."""
    import socket
    from types import SimpleNamespace

    from rs3d.engine.hooks.preemption import PreemptionHook

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        hook = PreemptionHook()
        hook.trainer = SimpleNamespace(device=torch.device("cpu"), dist=SimpleNamespace(distributed=True))
        assert hook._agreed_stop() is False and hook._pending is not None
        hook.received = "SIGTERM"
        assert hook._agreed_stop() is False  # the reduction launched before the signal
        assert hook._agreed_stop() is True and hook._pending is None  # nothing left in flight after a stop
        hook._launch()
        hook.after_train()  # waits for the last reduction
        assert hook._pending is None
    finally:
        torch.distributed.destroy_process_group()
