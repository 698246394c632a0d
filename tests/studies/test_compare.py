"""rs3d-compare: run folders read back, the equal-budget refusal, seeds trained/reused/resumed, the reports, the
Pareto front and plot. Fast tests use fake run folders written here (config.yaml, metrics.jsonl, predictions,
test json); no training except the slow end-to-end test."""
import csv
import json
import os

import pytest
from conftest import REPO_ROOT

from rs3d.config import load_config
from rs3d.studies.budget import check_equal_budget
from rs3d.studies.compare import SpeedBudget, compare_row, pareto_front, plot_speed_accuracy
from rs3d.studies.runs import load_run
from rs3d.studies.seeds import TrainingFailed, train_seeds
from rs3d.utils.errors import UserInputError

ROOT = REPO_ROOT
TOY = {name: os.path.join(ROOT, f"configs/toy/{name}.yaml") for name in ("rs3d_tiny", "r3d_tiny", "c2d_tiny")}
CLASSES = ["move_left", "move_right"]


def write_run(run_dir, config: str, overrides=(), correct=(1, 1, 0, 1), single=(75.0, 100.0), finished=True,
              videos=None, data="data", steps=240):
    """A run folder as rs3d-train leaves it: config.yaml, metrics.jsonl and, when finished, the final weights marker
    and the test reports for videos v0..v{n-1} (label 0; predicted right where ``correct`` is 1)."""
    os.makedirs(run_dir, exist_ok=True)
    cfg = load_config(config, ["DATA.PATH_TO_DATA_DIR", data, "OUTPUT_DIR", str(run_dir), *overrides])
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        f.write(cfg.dump())
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
        for split, top1 in (("train", 50.0), ("val", single[0] - 5), ("val_ema", single[0])):
            f.write(json.dumps({"step": 10, "split": split, "time": 1.0, "top1": top1, "top5": single[1],
                                "mean_class_accuracy": top1 - 1}) + "\n")
        f.write(json.dumps({"step": steps, "split": "train_epoch", "time": 2.0, "epoch": 12}) + "\n")
    if not finished:
        os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
        return cfg
    videos = videos or [f"{data}/videos/val/c/v{i}.mp4" for i in range(len(correct))]
    with open(os.path.join(run_dir, "predictions_val.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "label", "label_name", "pred", "pred_name", "prob", "top5"])
        for video, right in zip(videos, correct):
            writer.writerow([video, 0, CLASSES[0], 0 if right else 1, CLASSES[0 if right else 1], 0.9, ""])
    top1 = 100.0 * sum(correct) / len(correct)
    with open(os.path.join(run_dir, "test_val.json"), "w") as f:
        json.dump({"num_videos": len(correct), "top1": top1, "top5": 100.0, "mean_class_accuracy": top1 - 2}, f)
    with open(os.path.join(run_dir, "confusion_val.csv"), "w") as f:
        f.write("true\\pred," + ",".join(CLASSES) + "\n")
    open(os.path.join(run_dir, "model_final.pyth"), "wb").close()
    return cfg


def test_load_run_reads_what_rs3d_train_writes(tmp_path):
    write_run(tmp_path / "r", TOY["rs3d_tiny"], ["SEED", "4"], correct=(1, 0, 1, 1))
    run = load_run(str(tmp_path / "r"))
    assert run.seed == 4 and run.class_names == CLASSES and run.train_steps == 240
    assert run.accuracy["top-1 1-view"] == 75.0  # the EMA record wins over the raw model's 70
    assert run.accuracy["top-1 multi-view"] == 75.0 and run.accuracy["mean class acc multi-view"] == 73.0
    assert run.correct == {"videos/val/c/v0.mp4": True, "videos/val/c/v1.mp4": False,
                           "videos/val/c/v2.mp4": True, "videos/val/c/v3.mp4": True}  # relative to the data dir
    assert run.config["SOLVER.MAX_EPOCH"] == 12 and run.config["DATA.NUM_FRAMES"] == 8
    write_run(tmp_path / "u", TOY["rs3d_tiny"], finished=False)
    with pytest.raises(UserInputError, match="test_val.json: missing.*resume"):
        load_run(str(tmp_path / "u"))
    with pytest.raises(UserInputError, match="config.yaml: missing"):
        load_run(str(tmp_path))


def groups_of(tmp_path, spec: dict) -> dict:
    """{name: [RunResult]} from {name: (config, [overrides per seed])}."""
    out = {}
    for name, (config, seeds) in spec.items():
        runs = []
        for k, overrides in enumerate(seeds):
            write_run(tmp_path / name / f"seed{k}", config, ["SEED", str(k), *overrides])
            runs.append(load_run(str(tmp_path / name / f"seed{k}")))
        out[name] = runs
    return out


def test_equal_budget_holds_and_lists_the_keys(tmp_path):
    groups = groups_of(tmp_path, {"rs3d": (TOY["rs3d_tiny"], [[], []]), "c2d": (TOY["c2d_tiny"], [[], []])})
    check = check_equal_budget(groups)
    for key, value in [("SOLVER.MAX_EPOCH", 12), ("DATA.NUM_FRAMES", 8), ("DATA.SAMPLING_RATE", 4),
                       ("DATA.TRAIN_CROP_SIZE", 64), ("TEST.NUM_ENSEMBLE_VIEWS", 3), ("DATA.PATH_TO_DATA_DIR", "data")]:
        assert check.held_equal[key] == value  # the toy configs' own values (configs/toy/Base-Toy.yaml)
    assert "MODEL.RESNET3D.TEMPORAL_KERNELS" in check.differing  # the architecture is what is compared
    assert "SEED" not in check.held_equal and "OUTPUT_DIR" not in check.held_equal
    assert len(check.videos) == 4 and check.split == "val"


@pytest.mark.parametrize("overrides, keys", [
    (["SOLVER.MAX_EPOCH", "2"], ["SOLVER.MAX_EPOCH"]),
    (["DATA.NUM_FRAMES", "16", "DATA.TEST_CROP_SIZE", "96"], ["DATA.NUM_FRAMES", "DATA.TEST_CROP_SIZE"]),
    (["TEST.NUM_SPATIAL_CROPS", "3"], ["TEST.NUM_SPATIAL_CROPS"]),
    (["TRAIN.MIXED_PRECISION", "off"], ["TRAIN.MIXED_PRECISION"]),
    (["MODEL.INIT.FROM", "r3d_18"], ["MODEL.INIT.FROM"]),  # a pretrained start is budget, not architecture
])
def test_unequal_budget_is_refused_naming_the_keys(tmp_path, overrides, keys):
    groups = groups_of(tmp_path, {"a": (TOY["rs3d_tiny"], [[]]), "b": (TOY["rs3d_tiny"], [overrides])})
    with pytest.raises(UserInputError, match="unequal budgets") as info:
        check_equal_budget(groups)
    message = str(info.value)
    assert all(key in message for key in keys) and "--allow-different" in message
    check = check_equal_budget(groups, [k.rsplit(".", 1)[0] if k.startswith("MODEL.INIT") else k for k in keys])
    assert set(keys) <= set(check.differing) and not set(keys) & set(check.held_equal)


def test_refusals_of_data_seeds_and_unknown_keys(tmp_path):
    groups = groups_of(tmp_path, {"a": (TOY["rs3d_tiny"], [[], []]), "b": (TOY["c2d_tiny"], [[]])})
    write_run(tmp_path / "short", TOY["c2d_tiny"], ["SOLVER.MAX_EPOCH", "3"])
    with pytest.raises(UserInputError, match="SOLVER.MAX_EPOCH"):
        check_equal_budget({"a": groups["a"], "b": [load_run(str(tmp_path / "short"))]})
    write_run(tmp_path / "other_videos", TOY["c2d_tiny"], videos=[f"data/v{i}.mp4" for i in range(4)])
    with pytest.raises(UserInputError, match="different videos"):
        check_equal_budget({"a": groups["a"], "b": [load_run(str(tmp_path / "other_videos"))]})
    write_run(tmp_path / "other_data", TOY["c2d_tiny"], data="data2")
    with pytest.raises(UserInputError, match="DATA.PATH_TO_DATA_DIR"):
        check_equal_budget({"a": groups["a"], "b": [load_run(str(tmp_path / "other_data"))]})
    write_run(tmp_path / "fewer_clips", TOY["c2d_tiny"], steps=120)
    with pytest.raises(UserInputError, match="trained 120 steps.*training splits differ"):
        check_equal_budget({"a": groups["a"], "b": [load_run(str(tmp_path / "fewer_clips"))]})
    twice = [groups["a"][0], load_run(str(groups["a"][0].run_dir))]
    with pytest.raises(UserInputError, match="same SEED"):
        check_equal_budget({"a": twice, "b": groups["b"]})
    with pytest.raises(UserInputError, match="SOLVER.NOT_A_KEY"):
        check_equal_budget(groups, ["SOLVER.NOT_A_KEY"])
    write_run(tmp_path / "a_lr", TOY["rs3d_tiny"], ["SEED", "7", "SOLVER.BASE_LR", "0.1"])
    with pytest.raises(UserInputError, match="runs of a differ in SOLVER.BASE_LR"):
        check_equal_budget({"a": groups["a"] + [load_run(str(tmp_path / "a_lr"))], "b": groups["b"]})


class FakeTrainer:
    """Stands in for rs3d-train: records each command and writes a finished (or, if told, stopped) run folder."""

    def __init__(self, status: int = 0):
        self.commands, self.status = [], status

    def __call__(self, cmd: list[str]) -> int:
        self.commands.append(cmd)
        config, overrides = cmd[cmd.index("--cfg") + 1], cmd[cmd.index("--cfg") + 2:]
        run_dir = overrides[overrides.index("OUTPUT_DIR") + 1]
        write_run(run_dir, config, overrides, finished=self.status == 0)
        return self.status


def test_seeds_are_trained_seed_major_then_reused_and_resumed(tmp_path):
    trainer, lines = FakeTrainer(), []
    configs = [TOY["rs3d_tiny"], TOY["c2d_tiny"]]
    runs = train_seeds(configs, str(tmp_path), 2, ["DATA.PATH_TO_DATA_DIR", "data"], trainer, lines.append)
    assert runs == {n: [str(tmp_path / n / f"seed{k}") for k in (0, 1)] for n in ("rs3d_tiny", "c2d_tiny")}
    trained = [(c[c.index("--cfg") + 1], c[c.index("SEED") + 1]) for c in trainer.commands]
    assert trained == [(configs[0], "0"), (configs[1], "0"), (configs[0], "1"), (configs[1], "1")]
    assert [c[1:3] for c in trainer.commands] == [["-m", "rs3d.commands.train"]] * 4
    assert {load_run(d).seed for d in runs["rs3d_tiny"]} == {0, 1}
    # everything finished: a second call trains nothing and a third seed trains only seed 2
    again = FakeTrainer()
    assert train_seeds(configs, str(tmp_path), 2, ["DATA.PATH_TO_DATA_DIR", "data"], again, lines.append) == runs
    assert again.commands == [] and sum("reusing" in line for line in lines) == 4
    # an unfinished folder (checkpoints, no test report) is handed to rs3d-train again, which resumes it
    os.remove(tmp_path / "c2d_tiny" / "seed1" / "test_val.json")
    os.makedirs(tmp_path / "c2d_tiny" / "seed1" / "checkpoints")
    resume = FakeTrainer()
    train_seeds(configs, str(tmp_path), 3, ["DATA.PATH_TO_DATA_DIR", "data"], resume, lines.append)
    assert [(c[c.index("--cfg") + 1], c[c.index("SEED") + 1]) for c in resume.commands] == [
        (configs[1], "1"), (configs[0], "2"), (configs[1], "2")]
    assert any(line.startswith("resuming c2d_tiny seed 1") for line in lines)


def test_seed_folder_with_another_budget_is_refused_and_failures_stop(tmp_path):
    write_run(tmp_path / "rs3d_tiny" / "seed0", TOY["rs3d_tiny"], ["SEED", "0", "SOLVER.MAX_EPOCH", "2"])
    with pytest.raises(UserInputError, match="SOLVER.MAX_EPOCH"):
        train_seeds([TOY["rs3d_tiny"]], str(tmp_path), 1, ["DATA.PATH_TO_DATA_DIR", "data"], FakeTrainer())
    with pytest.raises(TrainingFailed, match="failed \\(exit 75\\)") as info:
        train_seeds([TOY["c2d_tiny"]], str(tmp_path), 1, ["DATA.PATH_TO_DATA_DIR", "data"], FakeTrainer(75))
    assert info.value.exit_code == 75  # a stopped seed stops the comparison with the same status


def test_command_on_fake_runs_writes_every_report(tmp_path):
    from rs3d.commands.compare import main

    for k, correct in enumerate([(1, 1, 1, 1, 1, 1, 1, 1), (1, 1, 1, 1, 1, 1, 1, 0)]):
        write_run(tmp_path / "runs" / "a" / f"s{k}", TOY["rs3d_tiny"], ["SEED", str(k)], correct, (90.0 + k, 100.0))
    write_run(tmp_path / "runs" / "b" / "s0", TOY["c2d_tiny"], ["SEED", "0"], (0, 0, 0, 0, 0, 0, 1, 0), (10.0, 50.0))
    out = tmp_path / "out"
    code = main(["--cfg", TOY["rs3d_tiny"], TOY["c2d_tiny"], "--runs", str(tmp_path / "runs/a/s*"),
                 str(tmp_path / "runs/b/s0"), "--no-speed", "--output-dir", str(out), "--resamples", "2000"])
    assert code == 0
    report = json.loads((out / "compare.json").read_text())
    a, b = report["configs"]
    assert a["seeds"] == 2 and a["top-1 1-view"] == 90.5 and a["top-1 1-view std"] == pytest.approx(0.5 ** 0.5)
    assert a["top-1 multi-view"] == 93.75 and b["top-1 multi-view"] == 12.5 and b["top-1 multi-view std"] is None
    (pair,) = report["pairs"]
    assert pair["diff_top1"] == pytest.approx(81.25) and pair["ci_low"] > 0 and pair["mcnemar"] is None
    assert pair["verdict"] == "rs3d_tiny better than c2d_tiny at 95%"
    assert len(report["runs"]) == 3 and report["budget"]["held_equal"]["SOLVER.MAX_EPOCH"] == 12
    runs_csv = list(csv.DictReader(open(out / "compare_runs.csv")))
    assert [(r["model"], r["seed"], r["top-1 multi-view"]) for r in runs_csv] == [
        ("rs3d_tiny", "0", "100.0"), ("rs3d_tiny", "1", "87.5"), ("c2d_tiny", "0", "12.5")]
    pairs_csv = list(csv.DictReader(open(out / "compare_pairs.csv")))
    assert pairs_csv[0]["verdict"] == pair["verdict"]
    budget_csv = {r["key"]: r for r in csv.DictReader(open(out / "compare_budget.csv"))}
    assert budget_csv["DATA.NUM_FRAMES"]["status"] == "held equal"
    assert budget_csv["MODEL.RESNET3D.TEMPORAL_KERNELS"]["status"] == "differs by design"
    md = (out / "compare.md").read_text()
    assert "90.50 ± 0.71" in md and "SOLVER.MAX_EPOCH=12" in md and "rs3d_tiny better than c2d_tiny" in md


def test_command_single_runs_get_mcnemar_and_words_for_zero(tmp_path):
    from rs3d.commands.compare import main

    write_run(tmp_path / "a", TOY["rs3d_tiny"], [], (1, 1, 0, 1, 0, 1))
    write_run(tmp_path / "b", TOY["r3d_tiny"], [], (1, 0, 1, 1, 0, 1))
    write_run(tmp_path / "c", TOY["c2d_tiny"], [], (0, 0, 0, 0, 0, 1))
    main(["--all-pairs", "--no-speed", "--output-dir", str(tmp_path / "out"), "--resamples", "1000", "--cfg",
          TOY["rs3d_tiny"], TOY["r3d_tiny"], TOY["c2d_tiny"], "--runs", str(tmp_path / "a"), str(tmp_path / "b"),
          str(tmp_path / "c"), "DATA.PATH_TO_DATA_DIR", "data"])  # trailing overrides after --runs are not runs
    pairs = json.loads((tmp_path / "out" / "compare.json").read_text())["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [("rs3d_tiny", "r3d_tiny"), ("rs3d_tiny", "c2d_tiny"),
                                                 ("r3d_tiny", "c2d_tiny")]
    pair = pairs[0]
    assert pair["diff_top1"] == 0.0 and pair["includes_zero"]
    assert pair["verdict"] == "not distinguishable at 95%"
    assert (pair["mcnemar"]["b"], pair["mcnemar"]["c"], pair["mcnemar"]["p_exact"]) == (1, 1, 1.0)


def test_command_refuses_unequal_budget_with_one_error_line(tmp_path, capsys):
    from rs3d.commands.base import run
    from rs3d.commands.compare import main

    write_run(tmp_path / "a", TOY["rs3d_tiny"], [])
    write_run(tmp_path / "b", TOY["rs3d_tiny"], ["SOLVER.MAX_EPOCH", "2"])
    argv = ["--cfg", TOY["rs3d_tiny"], TOY["rs3d_tiny"], "--runs", str(tmp_path / "a"), str(tmp_path / "b"),
            "--no-speed", "--output-dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as info:
        run(lambda: main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unequal budgets")
    assert "SOLVER.MAX_EPOCH (rs3d_tiny: 12, rs3d_tiny (2): 2)" in err  # repeated config names get a number
    assert not (tmp_path / "out" / "compare.json").exists()


def test_pareto_front():
    points = [(1.0, 80.0), (2.0, 75.0), (1.5, 70.0), (3.0, 60.0), (3.0, 55.0), (0.5, 80.0)]
    assert pareto_front(points) == [0, 1, 3]  # (1.5, 70) is beaten by (2, 75); (0.5, 80) by (1, 80)


def test_plot_has_error_bars(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"model": "a", "infer clips/s b1": 10.0, "top-1 multi-view": 80.0, "top-1 multi-view std": 4.0,
             "seeds": 3}, {"model": "b", "infer clips/s b1": 20.0, "top-1 multi-view": 60.0}]
    shown = []
    original = plt.Axes.errorbar
    plt.Axes.errorbar = lambda self, x, y, yerr=None, **kw: shown.append((x, y, yerr)) or original(
        self, x, y, yerr=yerr, **kw)
    try:
        assert plot_speed_accuracy(rows, str(tmp_path / "p.png"))
    finally:
        plt.Axes.errorbar = original
    assert shown == [(10.0, 80.0, 4.0), (20.0, 60.0, 0.0)]
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert not plot_speed_accuracy([{"model": "x", "infer clips/s b1": 1.0}], str(tmp_path / "q.png"))


def test_plot_on_a_cost_axis_fronts_the_cheap_and_accurate(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = []
    original = plt.Axes.plot
    monkeypatch.setattr(plt.Axes, "plot", lambda self, x, y, *a, **kw: lines.append((list(x), list(y))) or
                        original(self, x, y, *a, **kw))
    rows = [{"model": "cheap", "GFLOPs/view": 0.07, "top-1 multi-view": 15.0},
            {"model": "mid", "GFLOPs/view": 0.10, "top-1 multi-view": 98.0},
            {"model": "costly", "GFLOPs/view": 0.17, "top-1 multi-view": 99.5},
            {"model": "dominated", "GFLOPs/view": 0.20, "top-1 multi-view": 90.0}]
    assert plot_speed_accuracy(rows, str(tmp_path / "g.png"), speed_key="GFLOPs/view")
    assert lines == [([0.07, 0.10, 0.17], [15.0, 98.0, 99.5])]  # more FLOPs for less accuracy is off the front


@pytest.mark.slow
def test_compare_row_measures(tmp_path):
    row = compare_row(TOY["rs3d_tiny"], [], SpeedBudget("cpu", 1, 2, 2))
    assert row["params (M)"] > 1.0 and row["GFLOPs/view"] > 0.05 and row["max batch"] == 2
    assert row["infer clips/s b1"] > 0 and row["train clips/s"] > 0 and row["train peak MiB"] > 100
    assert set(compare_row(TOY["rs3d_tiny"], [], SpeedBudget(), speed=False)) == {"model", "params (M)",
                                                                                  "GFLOPs/view"}



@pytest.mark.slow
def test_seeds_train_for_real_reuse_and_resume(tmp_path, capsys):
    """rs3d-compare --seeds with real rs3d-train runs (1 epoch on 16 clips), then reused, then one resumed."""
    from rs3d.commands.compare import main
    from rs3d.data.prep.toy import generate_toy_dataset

    data = tmp_path / "toy"
    generate_toy_dataset(data, train_per_class=2, val_per_class=1, test_per_class=1, num_frames=32, workers=1)
    out = tmp_path / "out"
    argv = ["--cfg", TOY["rs3d_tiny"], TOY["c2d_tiny"], "--seeds", "1", "--no-speed", "--output-dir", str(out),
            "--resamples", "500", "DATA.PATH_TO_DATA_DIR", str(data), "DATA.TOY_DATASET", "False",
            "SOLVER.MAX_EPOCH", "1", "TRAIN.EVAL_PERIOD", "1", "TRAIN.BATCH_SIZE", "8"]
    assert main(argv) == 0
    first = json.loads((out / "compare.json").read_text())
    assert [r["run_dir"] for r in first["runs"]] == [str(out / "rs3d_tiny/seed0"), str(out / "c2d_tiny/seed0")]
    assert first["budget"]["held_equal"]["SOLVER.MAX_EPOCH"] == 1 and first["budget"]["videos"] == 8
    assert "training rs3d_tiny seed 0" in capsys.readouterr().err
    assert main(argv) == 0  # everything finished: reused, nothing trained
    assert capsys.readouterr().err.count("reusing") == 2
    os.remove(out / "c2d_tiny/seed0/test_val.json")  # as if stopped during the final test
    assert main(argv) == 0
    assert "resuming c2d_tiny seed 0" in capsys.readouterr().err
    again = json.loads((out / "compare.json").read_text())
    assert again["runs"] == first["runs"][:1] + [dict(first["runs"][1], train_seconds=again["runs"][1][
        "train_seconds"])]  # the resumed run tested the same weights on the same videos: the same numbers
