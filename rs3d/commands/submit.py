"""Submit a training run to Slurm, preemptible and requeued until it finishes: one task per GPU started by srun
(rs3d reads ranks from Slurm, no torchrun), SIGUSR1 to every task before the time limit or at preemption (the run
finishes its step, checkpoints and exits 75), and the job requeues itself on 75 and resumes from its checkpoint.

    rs3d-submit --cfg configs/kinetics400/rs3d_50.yaml --nodes 2 --gpus-per-node 8 --time 24:00:00 \\
        --partition gpu OUTPUT_DIR /runs/rs3d_50 DATA.PATH_TO_DATA_DIR /data/k400
    rs3d-submit ... --dry-run      # print the batch script instead of calling sbatch

The batch script is written to OUTPUT_DIR/slurm/ (kept with the run) and Slurm's log goes next to it.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys

from rs3d.commands import base as cli
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_write_text
from rs3d.utils.errors import UserInputError

#: The exit status of a run stopped by a signal with its checkpoint written (the README's preemption status).
PREEMPTED = 75


def sbatch_script(cfg: str, overrides: list[str], output_dir: str, nodes: int = 1, gpus_per_node: int = 1,
                  cpus_per_task: int = 8, time: str = "24:00:00", partition: str = "", account: str = "",
                  job_name: str = "rs3d", signal_seconds: int = 120, python: str = sys.executable) -> str:
    """The batch script: resources, the signal, ``srun`` of ``rs3d.commands.train``, requeue on exit 75."""
    tasks = max(gpus_per_node, 1)
    log_dir = os.path.join(output_dir, "slurm")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --nodes={nodes}",
             f"#SBATCH --ntasks-per-node={tasks}", f"#SBATCH --cpus-per-task={cpus_per_task}",
             f"#SBATCH --time={time}", f"#SBATCH --signal=USR1@{signal_seconds}", "#SBATCH --requeue",
             "#SBATCH --open-mode=append", f"#SBATCH --output={log_dir}/%x-%j.out"]
    if gpus_per_node:
        lines.insert(4, f"#SBATCH --gpus-per-node={gpus_per_node}")
    lines += [f"#SBATCH --partition={partition}"] if partition else []
    lines += [f"#SBATCH --account={account}"] if account else []
    train = [python, "-m", "rs3d.commands.train", "--cfg", cfg, *overrides, "OUTPUT_DIR", output_dir]
    lines += [
        "",
        f"# Written by rs3d-submit. SIGUSR1 reaches every task {signal_seconds} s before the time limit, SIGTERM at",
        "# preemption: either way rs3d finishes the step, writes a checkpoint and exits 75; the job then requeues",
        "# itself and the rerun continues from that checkpoint (TRAIN.AUTO_RESUME).",
        "srun " + " ".join(shlex.quote(part) for part in train),
        "status=$?",
        f'if [ "$status" -eq {PREEMPTED} ]; then',
        '    echo "rs3d: stopped with its checkpoint written; requeueing job $SLURM_JOB_ID"',
        '    scontrol requeue "$SLURM_JOB_ID" && exit 0',
        "fi",
        'exit "$status"',
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = cli.make_parser(__doc__, "rs3d-submit")
    cli.add_config_arguments(parser)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, default=1, help="one task per GPU (0: one CPU task per node)")
    parser.add_argument("--cpus-per-task", type=int, default=8, help="loader workers get these cores")
    parser.add_argument("--time", default="24:00:00", help="time limit of each submission (HH:MM:SS)")
    parser.add_argument("--partition", default="")
    parser.add_argument("--account", default="")
    parser.add_argument("--job-name", default="rs3d")
    parser.add_argument("--signal-seconds", type=int, default=120, help="SIGUSR1 this long before the time limit")
    parser.add_argument("--dry-run", action="store_true", help="print the batch script, submit nothing")
    args, cfg = cli.parse_config(parser, argv)
    for name in ("nodes", "cpus_per_task", "signal_seconds"):
        if getattr(args, name) < 1:
            raise UserInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.gpus_per_node < 0:
        raise UserInputError(f"--gpus-per-node must be 0 or more, got {args.gpus_per_node}")
    pairs = list(zip(args.opts[::2], args.opts[1::2]))
    overrides = [item for key, value in pairs if key != "OUTPUT_DIR" for item in (key, value)]
    def absolute(path: str) -> str:
        return os.path.abspath(path) if paths.is_local(path) else path  # the job may start in another folder

    script = sbatch_script(absolute(args.cfg), overrides, absolute(cfg.OUTPUT_DIR), args.nodes, args.gpus_per_node, args.cpus_per_task, args.time,
                           args.partition, args.account, args.job_name, args.signal_seconds)
    if args.dry_run:
        print(script, end="")
        return 0
    folder = os.path.join(cfg.OUTPUT_DIR, "slurm")
    paths.makedirs(folder)
    path = os.path.join(folder, f"{args.job_name}.sbatch")
    atomic_write_text(path, script)
    try:
        done = subprocess.run(["sbatch", path], capture_output=True, text=True)
    except FileNotFoundError:
        raise UserInputError(f"sbatch not found: is this a Slurm login node? The script is in {path}") from None
    if done.returncode != 0:
        raise UserInputError(f"sbatch refused {path}: {done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
    print(done.stdout.strip() + f" ({path})")
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-submit`` console command."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
