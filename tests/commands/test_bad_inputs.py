"""Every bad input of issue 25 through the real commands: per case the exit status, exactly one ``error:`` line on
stderr, no traceback, and no file changed in the run, data or source folders (sha256 before and after); the
accepted cases (a CSV with a UTF-8 BOM, a WebM video) assert their result instead.

The commands run as real processes (argv, stdout/stderr files, exit status), forked from one process that has
imported torch and rs3d once: a fresh interpreter per case would cost ~3 s of imports each. A read-only folder and
a full disk are simulated in the child (writes under a folder fail with EROFS / ENOSPC), as root ignores
permissions and a test cannot mount file systems.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, TINY, moving_frames, tiny_cfg

CFG = os.path.join(REPO_ROOT, "configs/toy/rs3d_tiny.yaml")

# The forking server: reads one JSON request per line, runs the command's console_main in a forked child with
# its stdout/stderr in files, answers the exit status. The parent never runs a torch op, so forking is safe.
SERVER = r'''
import errno, importlib, json, logging, os, sys, traceback
import torch  # noqa: F401  (imported once, shared by the children)

def install_fault(root, code):
    import builtins
    root = os.path.abspath(root)
    def hit(path):
        try:
            p = os.path.abspath(os.fsdecode(path))
        except TypeError:
            return False
        return p == root or p.startswith(root + os.sep)
    def fail(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and hit(file):
            fail(file)
        return real_open(file, mode, *args, **kwargs)
    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and hit(path):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)
    def fake_mkdir(path, *args, **kwargs):
        if hit(path):
            if os.path.isdir(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
            fail(path)
        return real_mkdir(path, *args, **kwargs)
    builtins.open, os.open, os.mkdir = fake_open, fake_os_open, fake_mkdir
    import io
    io.open = fake_open

for line in sys.stdin:
    request = json.loads(line)
    module = importlib.import_module(request["module"])
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(request["cwd"])
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.argv = [request["prog"], *request["argv"]]
            if request.get("fault"):
                install_fault(*request["fault"])
            try:
                module.console_main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, (int, type(None))):
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)
'''


@dataclass
class Result:
    rc: int
    out: str
    err: str


class Commands:
    """The forking server: ``run("predict", [...])`` runs ``rs3d-predict ...`` in a fresh child process."""

    def __init__(self, scratch: Path):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=scratch)
        self.scratch, self.count = scratch, 0

    def run(self, command: str, argv: list[str], fault: tuple[str, int] | None = None) -> Result:
        self.count += 1
        out, err = self.scratch / f"{self.count}.out", self.scratch / f"{self.count}.err"
        request = {"module": f"rs3d.commands.{command}", "prog": f"rs3d-{command.replace('_', '-')}",
                   "argv": [str(a) for a in argv], "cwd": str(self.scratch), "stdout": str(out), "stderr": str(err),
                   "fault": list(fault) if fault else None}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, "the command server died"
        return Result(json.loads(reply)["rc"], out.read_text(), err.read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def digest(*folders: str | Path) -> dict[str, str]:
    """sha256 of every file under the folders (a file or a missing path counts too)."""
    found = {}
    for folder in map(Path, folders):
        files = [folder] if folder.is_file() or folder.is_fifo() else sorted(folder.rglob("*"))
        for p in files:
            if p.is_fifo():
                found[str(p)] = "fifo"
            elif p.is_file():
                found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                found[str(p)] = "dir"
        if not folder.exists():
            found[str(folder)] = "missing"
    return found


# ------------------------------------------------------------------------------------------------- the inputs
class RunsCode:
    """Pickles as a call of os.system: a checkpoint that would run a command if it were unpickled unsafely."""

    def __reduce__(self):
        return os.system, ("touch HACKED",)


def write_class_folder_data(root: Path, videos: list[str]) -> None:
    for i, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        shutil.copy(videos[i], root / name / "v.mp4")


@pytest.fixture(scope="module")
def world(toy_dir, tmp_path_factory):
    """A finished tiny run (trained by rs3d-train itself), checkpoints of every bad kind, broken data folders."""
    root = tmp_path_factory.mktemp("bad_inputs")
    scratch = root / "scratch"
    scratch.mkdir()
    commands = Commands(scratch)
    run = root / "run"
    trained = commands.run("train", ["--cfg", CFG, *TINY, "DATA.PATH_TO_DATA_DIR", toy_dir, "OUTPUT_DIR", run,
                                     "SOLVER.MAX_EPOCH", "1", "TEST.ENABLE", "False"])
    assert trained.rc == 0, trained.err
    fx = root / "inputs"
    fx.mkdir()
    toy = Path(toy_dir)
    video = next(toy.glob("videos/val/*/*.mp4"))
    train_videos = sorted(str(p) for p in toy.glob("videos/train/*/*.mp4"))
    (fx / "text.pyth").write_text("notes about the model\nepoch 3 was the best one\n")
    (fx / "html.pyth").write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>log in</body></html>\n")
    (fx / "lfs.pyth").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:"
                                 "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
    (fx / "random.pyth").write_bytes(bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                                         dtype=torch.uint8).tolist()))
    cfg = tiny_cfg(toy_dir, run)
    from rs3d.models import build_model

    model = build_model(cfg)
    torch.save({"model": model.state_dict(), "config": 42}, fx / "config42.pyth")
    torch.save({"model": model.state_dict(), "hook": RunsCode()}, fx / "code.pyth")
    huge = cfg.clone()
    huge.defrost()
    huge.MODEL.NUM_CLASSES = 100_000_000
    torch.save({"model": model.state_dict(), "config": huge.dump()}, fx / "huge.pyth")
    wider = tiny_cfg(toy_dir, run, "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.25")
    torch.save({"model": build_model(wider).state_dict(), "config": cfg.dump()}, fx / "mangled.pyth")
    (fx / "a_file").write_text("not a folder\n")
    (fx / "latin1.yaml").write_bytes("# r\xe9glage du taux\nSOLVER:\n  BASE_LR: 0.1\n".encode("latin-1"))
    (fx / "latin1.json").write_bytes('["caf\xe9", "b"]'.encode("latin-1"))
    (fx / "mixed.json").write_text(json.dumps({"a": 0, "b": "1"}))
    (fx / "duplicates.json").write_text(json.dumps(["a", "b", "a"]))
    for name, base in (("base_number", "3"), ("base_list", "[1, 2]"), ("base_null", "null")):
        (fx / f"{name}.yaml").write_text(f"_BASE_: {base}\nSOLVER:\n  BASE_LR: 0.1\n")
    (fx / "results.json").mkdir()  # an --output that is a folder
    (fx / "model.pt2").mkdir()
    (fx / "readonly").mkdir()
    (root / "full").mkdir()  # a file system with no space left (simulated)
    # data folders: each is a class-folder dataset too, so a train.csv that is not a file must not switch modes
    data = {}
    for kind in ("latin1", "bom", "csv_dir", "csv_fifo", "kinetics"):
        folder = root / f"data_{kind}"
        write_class_folder_data(folder, train_videos)
        (folder / "classnames.json").write_text(json.dumps(["a", "b"]))
        data[kind] = folder
    (data["latin1"] / "train.csv").write_bytes(f"{data['latin1']}/a/caf\xe9.mp4 0\n".encode("latin-1"))
    for kind in ("bom",):
        body = "".join(f"{data[kind]}/{c}/v.mp4 {i}\n" for i, c in enumerate("ab"))
        (data[kind] / "train.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    (data["csv_dir"] / "train.csv").mkdir()
    os.mkfifo(data["csv_fifo"] / "train.csv")
    (data["kinetics"] / "train.csv").write_text("label,youtube_id,time_start,time_end,split\na,v,0,10,train\n")
    # a source folder for prepare-data and a link to it
    source = root / "source"
    write_class_folder_data(source, train_videos)
    (root / "link_to_source").symlink_to(source)
    world = {"root": root, "run": run, "fx": fx, "toy": toy, "video": video, "data": data, "source": source,
             "commands": commands, "cfg": cfg}
    yield world
    commands.close()


# ------------------------------------------------------------------------------------------------- the cases
@dataclass
class Case:
    """One bad input: the command, its arguments (``{run}``, ``{fx}``... filled from the world), the words the
    ``error:`` line must hold, the exit status, a simulated fault (folder, errno), and a setup step."""

    name: str
    command: str
    argv: list[str]
    expect: str
    rc: int = 2
    fault: tuple[str, int] | None = None
    setup: object = None
    watch: list[str] = field(default_factory=list)


def train_args(*extra: str) -> list[str]:
    return ["--cfg", CFG, *TINY, "DATA.PATH_TO_DATA_DIR", "{toy}", "SOLVER.MAX_EPOCH", "1", "TEST.ENABLE", "False",
            *extra]


KIND_MESSAGES = {"text": "not a checkpoint (text)", "html": "an HTML page, not a checkpoint",
                 "lfs": "a Git LFS pointer (run git lfs pull), not a checkpoint",
                 "random": "not a checkpoint (binary data of no known format)"}


def copy_run(world, name: str) -> Path:
    target = world["root"] / name
    if not target.exists():
        shutil.copytree(world["run"], target)
    return target


def with_junk_checkpoint(kind: str):
    def setup(world) -> None:
        folder = copy_run(world, f"resume_{kind}")
        shutil.copy(world["fx"] / f"{kind}.pyth", folder / "checkpoints" / "checkpoint_epoch_00002.pyth")
    return setup


def with_live_lock(world) -> None:
    folder = copy_run(world, "locked")
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "refreshed": time.time()}
    (folder / "run.lock").write_text(json.dumps(holder))


CASES = [
    # checkpoint files that are not checkpoints, wherever a checkpoint is read
    *[Case(f"predict --checkpoint {kind}", "predict", ["{video}", "--checkpoint", f"{{fx}}/{kind}.pyth"],
           KIND_MESSAGES[kind]) for kind in KIND_MESSAGES],
    Case("export --checkpoint text", "export", ["--checkpoint", "{fx}/text.pyth", "--output", "{root}/m.pt2"],
         KIND_MESSAGES["text"]),
    Case("export --checkpoint html", "export", ["--checkpoint", "{fx}/html.pyth", "--output", "{root}/m.pt2"],
         KIND_MESSAGES["html"]),
    Case("export safetensors --checkpoint lfs", "export", ["--checkpoint", "{fx}/lfs.pyth", "--format", "safetensors",
                                                           "--output", "{root}/shared"], KIND_MESSAGES["lfs"]),
    Case("test TEST.CHECKPOINT_FILE lfs", "test", ["--cfg", "{run}/config.yaml", "TEST.CHECKPOINT_FILE",
                                                   "{fx}/lfs.pyth"], KIND_MESSAGES["lfs"]),
    Case("test TEST.CHECKPOINT_FILE random", "test", ["--cfg", "{run}/config.yaml", "TEST.CHECKPOINT_FILE",
                                                      "{fx}/random.pyth"], KIND_MESSAGES["random"]),
    Case("train MODEL.INIT.FROM text", "train", train_args("OUTPUT_DIR", "{root}/init_text", "MODEL.INIT.FROM",
                                                           "{fx}/text.pyth"), KIND_MESSAGES["text"]),
    Case("train MODEL.INIT.FROM html", "train", train_args("OUTPUT_DIR", "{root}/init_html", "MODEL.INIT.FROM",
                                                           "{fx}/html.pyth"), KIND_MESSAGES["html"]),
    Case("train TRAIN.CHECKPOINT_FILE random", "train", train_args("OUTPUT_DIR", "{root}/init_random",
                                                                   "TRAIN.CHECKPOINT_FILE", "{fx}/random.pyth"),
         KIND_MESSAGES["random"]),
    *[Case(f"auto-resume, newest checkpoint {kind}", "train", ["--cfg", f"{{root}}/resume_{kind}/config.yaml",
                                                                 "OUTPUT_DIR", f"{{root}}/resume_{kind}"],
           KIND_MESSAGES[kind], setup=with_junk_checkpoint(kind), watch=[f"{{root}}/resume_{kind}"])
      for kind in ("text", "lfs")],
    Case("predict --checkpoint that would run code", "predict", ["{video}", "--checkpoint", "{fx}/code.pyth"],
         "code.pyth: refused: it references posix.system, which is not among tensors"),
    # checkpoints whose config is bad, and weights that do not fit
    Case("predict: a checkpoint whose config is 42", "predict", ["{video}", "--checkpoint", "{fx}/config42.pyth"],
         "config42.pyth (stored config): expected the text of a YAML config, got int"),
    Case("predict: a checkpoint with NUM_CLASSES 100000000", "predict", ["{video}", "--checkpoint", "{fx}/huge.pyth"],
         "MODEL.NUM_CLASSES: 100000000 is not an integer in [0, 100000]"),
    Case("test: weights of another model (strict loading)", "test", ["--cfg", "{run}/config.yaml",
                                                                      "TEST.CHECKPOINT_FILE", "{fx}/mangled.pyth"],
         "mangled.pyth: does not fit the model"),
    # output folders and targets
    Case("train OUTPUT_DIR is a file", "train", train_args("OUTPUT_DIR", "{fx}/a_file"),
         "a_file: OUTPUT_DIR is a file, not a folder"),
    Case("train OUTPUT_DIR under a file", "train", train_args("OUTPUT_DIR", "{fx}/a_file/run"),
         "a_file is a file, not a folder"),
    Case("train OUTPUT_DIR read-only", "train", train_args("OUTPUT_DIR", "{fx}/readonly"),
         "readonly: cannot write in OUTPUT_DIR (Read-only file system)", fault=("{fx}/readonly", 30)),
    Case("train on a full disk", "train", train_args("OUTPUT_DIR", "{root}/full/run"),
         "cannot write in OUTPUT_DIR (No space left on device)", fault=("{root}/full", 28)),
    Case("rerun of a finished run, OUTPUT_DIR now read-only", "train", ["--cfg", "{run}/config.yaml"],
         "cannot write in OUTPUT_DIR (Read-only file system)", fault=("{run}", 30)),
    Case("test OUTPUT_DIR read-only", "test", ["--cfg", "{run}/config.yaml"],
         "run: cannot write in OUTPUT_DIR (Read-only file system)", fault=("{run}", 30)),
    Case("test OUTPUT_DIR is a file", "test", ["--cfg", "{run}/config.yaml", "OUTPUT_DIR", "{fx}/a_file"],
         "a_file: OUTPUT_DIR is a file, not a folder"),
    Case("predict --output is a folder", "predict", ["{video}", "--checkpoint", "{run}/model_final.pyth", "--output",
                                                     "{fx}/results.json"], "results.json: --output is a folder"),
    Case("predict --output on a read-only folder", "predict", ["{video}", "--checkpoint", "{run}/model_final.pyth",
                                                               "--output", "{fx}/readonly/results.json"],
         "cannot write --output there (Read-only file system)", fault=("{fx}/readonly", 30)),
    Case("export --output is a folder", "export", ["--checkpoint", "{run}/model_final.pyth", "--output",
                                                   "{fx}/model.pt2"], "model.pt2: --output is a folder"),
    Case("export --output on a read-only folder", "export", ["--checkpoint", "{run}/model_final.pyth", "--output",
                                                             "{fx}/readonly/model.pt2"],
         "cannot write --output there (Read-only file system)", fault=("{fx}/readonly", 30)),
    Case("export --onnx is a folder", "export", ["--checkpoint", "{run}/model_final.pyth", "--output",
                                                 "{root}/ok.pt2", "--onnx", "{fx}/results.json"],
         "results.json: --onnx is a folder"),
    Case("check-data --out on a read-only folder", "check_data", ["{data[bom]}", "--out", "{fx}/readonly/x.csv"],
         "cannot write --out there (Read-only file system)", fault=("{fx}/readonly", 30)),
    # config values and config files
    *[Case(f"train TRAIN.BATCH_SIZE {v}", "train", train_args("OUTPUT_DIR", "{root}/bs", "TRAIN.BATCH_SIZE", v),
           f"TRAIN.BATCH_SIZE: {v} is not an integer >= 1") for v in ("0", "-1", "None")],
    Case("train --cfg latin-1 YAML", "train", ["--cfg", "{fx}/latin1.yaml"], "latin1.yaml:1: not UTF-8 text (byte 0xe9)"),
    *[Case(f"train _BASE_ {kind}", "train", ["--cfg", f"{{fx}}/base_{kind}.yaml"], f"base_{kind}.yaml: _BASE_ must be a config file or a list of them")
      for kind in ("number", "list", "null")],
    Case("train latin-1 class names", "train", train_args("OUTPUT_DIR", "{root}/names", "MODEL.NUM_CLASSES", "2",
                                                          "DATA.CLASS_NAMES_FILE", "{fx}/latin1.json"),
         "latin1.json:1: not UTF-8 text (byte 0xe9); save it as UTF-8"),
    Case("predict --class-names latin-1", "predict", ["{video}", "--checkpoint", "{run}/model_final.pyth",
                                                      "--class-names", "{fx}/latin1.json"], "latin1.json:1: not UTF-8"),
    Case("train class names with mixed int/str indices", "train",
         train_args("OUTPUT_DIR", "{root}/names", "MODEL.NUM_CLASSES", "2", "DATA.CLASS_NAMES_FILE", "{fx}/mixed.json"),
         "mixed.json: class indices must be integers"),
    Case("train duplicate class names", "train",
         train_args("OUTPUT_DIR", "{root}/names", "MODEL.NUM_CLASSES", "3", "DATA.CLASS_NAMES_FILE",
                    "{fx}/duplicates.json"), "duplicates.json: class name 'a' appears twice"),
    Case("train latin-1 CSV", "train", train_args("OUTPUT_DIR", "{root}/csv", "MODEL.NUM_CLASSES", "2",
                                                  "DATA.PATH_TO_DATA_DIR", "{data[latin1]}"),
         "train.csv:1: not UTF-8 text (byte 0xe9)"),
    Case("check-data latin-1 CSV", "check_data", ["{data[latin1]}"], "train.csv:1: not UTF-8 text (byte 0xe9)"),
    Case("train train.csv is a folder", "train", train_args("OUTPUT_DIR", "{root}/csv", "MODEL.NUM_CLASSES", "2",
                                                            "DATA.PATH_TO_DATA_DIR", "{data[csv_dir]}"),
         "train.csv: not a regular file (a folder)"),
    Case("check-data train.csv is a FIFO", "check_data", ["{data[csv_fifo]}"], "train.csv: not a regular file (a FIFO)"),
    Case("train train.csv is a FIFO", "train", train_args("OUTPUT_DIR", "{root}/csv", "MODEL.NUM_CLASSES", "2",
                                                          "DATA.PATH_TO_DATA_DIR", "{data[csv_fifo]}"),
         "train.csv: not a regular file (a FIFO)"),
    Case("train a bad field in DATA.KINETICS_PATH_FORMAT", "train",
         train_args("OUTPUT_DIR", "{root}/csv", "MODEL.NUM_CLASSES", "2", "DATA.PATH_TO_DATA_DIR", "{data[kinetics]}",
                    "DATA.KINETICS_PATH_FORMAT", "{{split}}/{{labl}}/{{youtube_id}}.mp4"),
         "DATA.KINETICS_PATH_FORMAT '{{split}}/{{labl}}/{{youtube_id}}.mp4': unknown field {{labl}}"),
    # the earlier items of issue 25
    Case("train while another run holds the folder", "train", ["--cfg", "{root}/locked/config.yaml", "OUTPUT_DIR",
                                                                "{root}/locked"],
         "is in use by another run", setup=with_live_lock, watch=["{root}/locked"]),
    Case("rerun with another model", "train", ["--cfg", "{run}/config.yaml", "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.5"],
         "another model or data (MODEL.RESNET3D.WIDTH_MULTIPLIER 0.125 -> 0.5)"),
    Case("rerun with another recipe, no --allow-changes", "train", ["--cfg", "{run}/config.yaml", "SOLVER.BASE_LR",
                                                                     "0.01"], "pass --allow-changes"),
    Case("prepare-data onto a link to its source", "prepare_data", ["{source}", "{root}/link_to_source"],
         "is SRC_DATA_DIR {source} (links followed)"),
    Case("compare --runs with a missing folder", "compare", ["--cfg", "{run}/config.yaml", "--runs", "{root}/nope",
                                                             "--no-speed"], "--runs {root}/nope: no such run folder"),
    Case("compare --max-batch 0", "compare", ["--cfg", "{run}/config.yaml", "--max-batch", "0"],
         "--max-batch must be at least 1"),
    *[Case(f"predict {option} {value}", "predict", ["{video}", "--checkpoint", "{run}/model_final.pyth", option, value],
           f"{option} must be") for option, value in (("--window-sec", "0"), ("--stride-sec", "0"), ("--topk", "0"),
                                                      ("--window-sec", "nan"), ("--batch-size", "0"),
                                                      ("--window-sec", "-1"), ("--topk", "-1"))],
    Case("predict --device cuda without a GPU", "predict", ["{video}", "--checkpoint", "{run}/model_final.pyth",
                                                            "--device", "cuda"], "no CUDA device is available here"),
    Case("predict, every input unreadable: exit 1, results still written", "predict",
         ["{fx}/text.pyth", "--checkpoint", "{run}/model_final.pyth", "--output", "{root}/unreadable.json"],
         "1 of 1 videos could not be read", rc=1),
]


def fill(text: str, world: dict) -> str:
    return text.format(**{k: (str(v) if not isinstance(v, dict) else {n: str(p) for n, p in v.items()})
                          for k, v in world.items()})


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_one_error_line_and_nothing_changed(world, case):
    if case.setup:
        case.setup(world)
    argv = [fill(a, world) for a in case.argv]
    watched = [world["run"], world["fx"], world["toy"], world["source"], *world["data"].values(),
               *[fill(w, world) for w in case.watch]]
    before = digest(*watched)
    new_outputs = {p for p in world["root"].iterdir()}
    result = world["commands"].run(case.command, argv, fault=(fill(case.fault[0], world), case.fault[1])
                                   if case.fault else None)
    assert result.rc == case.rc, result.err
    assert "Traceback" not in result.err, result.err
    if case.rc == 2:
        lines = [line for line in result.err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], result.err
        assert fill(case.expect, world) in errors[0], result.err
    else:
        assert fill(case.expect, world) in result.err
    assert digest(*watched) == before
    assert not (world["root"] / "scratch" / "HACKED").exists()  # no checkpoint ran its code
    created = {p for p in world["root"].iterdir()} - new_outputs
    allowed = {Path(fill(w, world)) for w in case.watch}
    assert not {p for p in created if p not in allowed and p.name != "unreadable.json"}, created


@pytest.mark.slow
def test_accepted_inputs(world):
    """A CSV with a UTF-8 BOM reads as without it (the first path carries no invisible character), and a VP9 WebM,
    whose container declares no frame count, is predicted like any video."""
    import av
    import numpy as np

    commands, bom = world["commands"], world["data"]["bom"]
    from rs3d.data.splits import read_split

    records = read_split(str(bom), "train")
    assert [r.path for r in records] == [f"{bom}/a/v.mp4", f"{bom}/b/v.mp4"] and [r.label for r in records] == [0, 1]
    result = commands.run("check_data", [bom, "--no-decode", "--out", world["root"] / "bom.clean.csv"])
    assert result.rc == 0 and "checking 2 videos" in result.out and "2 of 2 videos" in result.out, result.err
    webm = world["root"] / "clip.webm"
    with av.open(str(webm), "w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in moving_frames(24):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = commands.run("predict", [webm, "--checkpoint", world["run"] / "model_final.pyth", "--topk", "2"])
    assert result.rc == 0 and "Traceback" not in result.err, result.err
    line = next(line for line in result.out.splitlines() if line.startswith(str(webm)))
    names = json.loads((world["toy"] / "classnames.json").read_text())
    assert sum(name in line for name in names) == 2, line


def test_largest_batch_speed_with_max_batch_1_is_measured_not_zero(monkeypatch):
    """``rs3d-compare --max-batch 1`` reported 0.00 clips/s: no batch of 2, 4, ... fitted under 1. It now times
    batch 1; a run where no batch could run gives no number rather than 0."""
    from rs3d.studies import compare

    timed = []

    def fake_time(factory, setting):
        timed.append(setting.batch_size)
        return {"clips_per_s": 10.0 * setting.batch_size} if setting.batch_size <= 4 else {"error": "out of memory"}

    monkeypatch.setattr(compare, "time_in_subprocess", fake_time)
    budget = compare.SpeedBudget(max_batch=1)
    assert compare.largest_batch_speed("x.yaml", [], 4, 32, budget) == (10.0, 1) and timed == [1]
    timed.clear()
    assert compare.largest_batch_speed("x.yaml", [], 4, 32, compare.SpeedBudget(max_batch=64)) == (40.0, 4)
    assert timed == [2, 4, 8]
    monkeypatch.setattr(compare, "time_in_subprocess", lambda factory, setting: {"error": "out of memory"})
    assert compare.largest_batch_speed("x.yaml", [], 4, 32, budget) == (None, None)
