"""tools/gpu_checks.sh, the one prepared run for a borrowed GPU (15 minutes of device time, start included): run here
with a stand-in ``python3`` that records its arguments, every step is reached in order with its time cap, the
benchmark calls parse with the benchmark's own command line, the GPU tier selects the gpu marker, and the caps add
up to less than the device time."""
import importlib.util
import os
import re
import stat
import subprocess
import sys

from conftest import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "tools", "gpu_checks.sh")


def _levers_parser():
    spec = importlib.util.spec_from_file_location("benchmark_levers", os.path.join(REPO_ROOT, "tools",
                                                                                   "benchmark_levers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_parser()


def test_every_step_runs_in_order_with_valid_arguments(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    stand_in = bin_dir / "python3"
    stand_in.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\037" "$a"; done >> {log}\nprintf "\\036" >> {log}\n')
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    out = subprocess.run(["bash", SCRIPT, str(tmp_path / "out")], env=env, capture_output=True, text=True,
                         timeout=60, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    steps = [line.split()[1].rstrip(":") for line in out.stdout.splitlines() if line.startswith("== ") and "exit 0" in line]
    assert steps == ["versions", "levers_eager", "gpu_tier", "levers_regional", "levers_whole"], out.stdout
    calls = [call.split("\x1f")[:-1] for call in log.read_text().split("\x1e")[:-1]]
    assert len(calls) == 5
    parser = _levers_parser()
    levers = [c[1:] for c in calls if c[0] == "tools/benchmark_levers.py"]
    assert [parser.parse_args(args).levers for args in levers] == [[0, 1, 2, 3], [4], [5]]
    for args in levers:
        parsed = parser.parse_args(args)
        assert (parsed.cfg, parsed.batch_size) == ("configs/kinetics400/rs3d_50.yaml", 16)  # the step
        assert parsed.json and parsed.json.startswith(str(tmp_path / "out"))
    (tier,) = [c for c in calls if c[:2] == ["-m", "pytest"]]
    assert tier[tier.index("-m", 1) + 1] == "gpu" and "--timeout" in tier


def test_the_caps_fit_the_device_time():
    """Each step's cap plus the 10 s grace of `timeout -k`; together at most 11.5 minutes of the 15, leaving the
    machine's start (a few minutes)."""
    with open(SCRIPT) as f:
        caps = [int(cap) + 10 for cap in re.findall(r"^step (\d+) ", f.read(), flags=re.M)]
    assert len(caps) == 5 and sum(caps) <= 11.5 * 60, caps


def test_the_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", SCRIPT], capture_output=True).returncode == 0
    assert sys.executable  # the stand-in above replaces python3 only inside the script's PATH
