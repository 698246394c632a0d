"""Slurm without wrappers (issue 22, item 2): ranks from Slurm's variables when srun starts the tasks (two real gloo
processes), and rs3d-submit's batch script, whose requeue-on-75 logic runs under bash with stand-in srun/scontrol."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from rs3d.commands import submit
from rs3d.utils.distributed import first_host, slurm_environment

ROOT = Path(REPO_ROOT)


@pytest.mark.parametrize("nodelist,host", [("gpu[07-09,12],cpu1", "gpu07"), ("node1", "node1"),
                                           ("n[001-004]", "n001"), ("a1,b[1-2]", "a1"), ("x-y[3]", "x-y3")])
def test_first_host_of_a_node_list(nodelist, host):
    assert first_host(nodelist) == host


def test_slurm_variables_become_torchruns():
    env = {"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_STEP_NUM_TASKS": "8",
           "SLURM_STEP_TASKS_PER_NODE": "4(x2)", "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "123456"}
    assert slurm_environment(env) == {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                                      "MASTER_ADDR": "gpu07", "MASTER_PORT": str(20000 + 123456 % 20000)}
    assert slurm_environment({**env, "RANK": "0", "WORLD_SIZE": "2"}) == {}  # torchrun's own win
    assert slurm_environment({**env, "SLURM_STEP_NUM_TASKS": "1"}) == {}  # one task: nothing to join
    assert slurm_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}) == {}  # the batch shell, not an srun step
    assert slurm_environment({**env, "MASTER_PORT": "29511"})["MASTER_PORT"] == "29511"


CHILD = """
import torch, torch.distributed as dist
from rs3d.utils.distributed import init_distributed
info = init_distributed("cpu", 1.0)
value = torch.tensor([float(info.rank + 1)])
dist.all_reduce(value)
print(info.rank, info.world_size, info.local_rank, int(value.item()), flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_srun_tasks_join_one_process_group_without_torchrun():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    procs = []
    for rank in range(2):
        env = dict(base, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_STEP_NUM_TASKS="2",
                   SLURM_STEP_TASKS_PER_NODE="2", SLURM_STEP_NODELIST="127.0.0.1", SLURM_JOB_ID="42",
                   MASTER_PORT=str(port), PYTHONPATH=str(ROOT))
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outputs]
    assert sorted(out.split() for out, _ in outputs) == [["0", "2", "0", "3"], ["1", "2", "1", "3"]]


def run_script(tmp_path: Path, train_status: int) -> tuple[subprocess.CompletedProcess, str]:
    """The batch script under bash, with srun exiting ``train_status`` and scontrol recording its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(f"#!/bin/bash\n{{ printf 'srun'; printf ' [%s]' \"$@\"; echo; }} >> {tmp_path}/calls\n"
                                  f"exit {train_status}\n")
    (bin_dir / "scontrol").write_text(f"#!/bin/bash\necho \"scontrol $*\" >> {tmp_path}/calls\n")
    for tool in ("srun", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    script = submit.sbatch_script("cfg with space.yaml", ["SOLVER.BASE_LR", "0.4"], str(tmp_path / "run"),
                                  nodes=2, gpus_per_node=8)
    (tmp_path / "job.sbatch").write_text(script)
    done = subprocess.run(["bash", str(tmp_path / "job.sbatch")], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_JOB_ID="777"))
    return done, (tmp_path / "calls").read_text()


def test_a_preempted_run_requeues_its_job(tmp_path):
    done, calls = run_script(tmp_path, 75)
    assert done.returncode == 0 and "requeueing job 777" in done.stdout
    srun, scontrol = calls.splitlines()
    assert "[-m] [rs3d.commands.train] [--cfg] [cfg with space.yaml] [SOLVER.BASE_LR] [0.4] [OUTPUT_DIR]" in srun
    assert scontrol == "scontrol requeue 777"


def test_a_failed_or_finished_run_is_not_requeued(tmp_path):
    done, calls = run_script(tmp_path, 1)
    assert done.returncode == 1 and "scontrol" not in calls
    (tmp_path / "ok").mkdir()
    done, calls = run_script(tmp_path / "ok", 0)
    assert done.returncode == 0 and "scontrol" not in calls


def test_the_batch_script_asks_for_the_signal_and_the_resources(capsys):
    assert submit.main(["--cfg", str(ROOT / "configs/toy/rs3d_tiny.yaml"), "--nodes", "2", "--gpus-per-node", "4",
                        "--time", "02:00:00", "--partition", "gpu", "--dry-run", "OUTPUT_DIR", "/runs/toy"]) == 0
    script = capsys.readouterr().out
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --time=02:00:00", "#SBATCH --partition=gpu", "#SBATCH --signal=USR1@120",
                 "#SBATCH --requeue", "#SBATCH --output=/runs/toy/slurm/%x-%j.out"):
        assert line in script.splitlines(), line
    assert script.count("OUTPUT_DIR /runs/toy") == 1
