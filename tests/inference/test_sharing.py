"""Sharing models (issue 22, item 1): pretrained folders with safetensors and a model card, loaded by folder and by
``hf-hub:org/name`` from a pre-populated Hugging Face cache with HF_HUB_OFFLINE=1 (huggingface_hub's own lookup;
nothing here can reach the hub), and the upload call."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

import rs3d
from rs3d.checkpoint import CheckpointError, load_checkpoint, save_atomic
from rs3d.commands import export
from rs3d.config import load_config
from rs3d.inference.sharing import exports_ema
from rs3d.models import build_model

ROOT = Path(REPO_ROOT)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    """A finished toy run's folder: model_final.pyth whose EMA differs from its raw weights, and its reports."""
    cfg = load_config(str(ROOT / "configs/toy/rs3d_tiny.yaml"))
    torch.manual_seed(0)
    raw, ema = build_model(cfg, init=False), build_model(cfg, init=False)
    run = tmp_path / "run"
    run.mkdir()
    save_atomic({"model": raw.state_dict(), "ema": {"module": ema.state_dict(), "updates": 3},
                 "config": cfg.dump(), "class_names": [f"class_{i}" for i in range(8)]}, str(run / "model_final.pyth"))
    (run / "metrics.jsonl").write_text(json.dumps({"split": "val", "top1": 70.0, "top5": 95.0}) + "\n" +
                                       json.dumps({"split": "val_ema", "top1": 87.5, "top5": 100.0}) + "\n")
    (run / "test_val.json").write_text(json.dumps({"top1": 91.25, "top5": 100.0, "mean_class_accuracy": 90.5,
                                                   "num_videos": 80, "views_per_video": 3}))
    return run


def ema_model(run: Path) -> torch.nn.Module:
    state = torch.load(run / "model_final.pyth", weights_only=True)
    cfg = load_config(str(ROOT / "configs/toy/rs3d_tiny.yaml"))
    model = build_model(cfg, init=False)
    model.load_state_dict(state["ema"]["module"])
    return model.eval()


def test_export_as_safetensors_round_trips_the_ema_weights_with_a_card(run_dir, tmp_path, capsys):
    folder = tmp_path / "shared"
    assert export.main(["--checkpoint", str(run_dir / "model_final.pyth"), "--format", "safetensors",
                        "--output", str(folder)]) == 0
    assert sorted(os.listdir(folder)) == ["README.md", "classnames.json", "config.yaml", "model.safetensors"]
    assert json.loads((folder / "classnames.json").read_text()) == [f"class_{i}" for i in range(8)]
    card = (folder / "README.md").read_text()
    for fact in ("library_name: rs3d", "1.12 M", "top-1 87.50%", "(EMA model)", "top-1 91.25%", "3 views per video",
                 "mean class accuracy 90.50%", "12 epochs", 'rs3d.create_model("hf-hub:'):
        assert fact in card, fact
    clip = torch.rand(2, 3, 8, 64, 64)
    model = rs3d.create_model(str(folder)).eval()
    with torch.no_grad():
        assert torch.equal(model(clip), ema_model(run_dir)(clip))  # the EMA weights, exactly
    random = rs3d.create_model(str(folder), pretrained=False).eval()
    with torch.no_grad():
        assert not torch.equal(random(clip), model(clip))


def populate_cache(cache: Path, repo: str, folder: Path) -> None:
    """The layout huggingface_hub's snapshot_download leaves: blobs behind snapshots/<commit>, refs/main."""
    base = cache / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in os.listdir(folder):
        (snapshot / name).write_bytes((folder / name).read_bytes())
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(COMMIT)


@pytest.mark.slow
def test_hub_name_loads_from_an_offline_cache_in_every_entry_point(run_dir, tmp_path, toy_dir):
    folder = tmp_path / "shared"
    assert export.main(["--checkpoint", str(run_dir / "model_final.pyth"), "--format", "safetensors",
                        "--output", str(folder)]) == 0
    cache = tmp_path / "hf_cache"
    populate_cache(cache, "someorg/toy", folder)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), PYTHONPATH=str(ROOT))
    video = next(Path(toy_dir, "videos", "val").glob("*/*.mp4"))
    outputs = {}
    for name, checkpoint in (("hub", "hf-hub:someorg/toy"), ("pyth", str(run_dir / "model_final.pyth"))):
        out = tmp_path / f"{name}.json"
        done = subprocess.run([sys.executable, "-m", "rs3d.commands.predict", "--checkpoint", checkpoint, str(video),
                               "--output", str(out)], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[name] = json.loads(out.read_text())
    assert outputs["hub"] == outputs["pyth"] and outputs["hub"][0]["top"][0]["name"].startswith("class_")
    script = ("import torch, rs3d; clip = torch.rand(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0));"
              "a = rs3d.create_model('hf-hub:someorg/toy').eval();"
              "b = rs3d.create_model('rs3d_tiny', pretrained='hf-hub:someorg/toy', num_classes=8).eval();"
              "print(torch.equal(a(clip), b(clip)))")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr[-2000:]
    missing = subprocess.run([sys.executable, "-m", "rs3d.commands.predict", "--checkpoint", "hf-hub:someorg/absent",
                              str(video)], env=env, capture_output=True, text=True, timeout=240)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1].startswith("error: hf-hub:someorg/absent: not in the Hugging Face")


def test_a_damaged_weights_file_is_one_clear_error(tmp_path):
    from rs3d.checkpoint.hub import save_pretrained_files

    folder = tmp_path / "shared"
    save_pretrained_files(str(folder), {"w": torch.ones(2)}, "MODEL:\n  NUM_CLASSES: 2\n", ["a", "b"], "# card\n")
    assert torch.equal(load_checkpoint(str(folder))["model"]["w"], torch.ones(2))
    (folder / "model.safetensors").write_bytes(b"<html>not weights</html>")
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors file"):
        load_checkpoint(str(folder))


@pytest.mark.slow
def test_push_to_hub_creates_the_repo_and_uploads_the_folder(run_dir, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, private=False, exist_ok=False):
            calls.append(("create", repo_id, exist_ok))

        def upload_folder(self, folder_path, repo_id, commit_message):
            calls.append(("upload", repo_id, sorted(os.listdir(folder_path))))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    folder = tmp_path / "shared"
    assert export.main(["--checkpoint", str(run_dir / "model_final.pyth"), "--format", "safetensors",
                        "--output", str(folder), "--push-to-hub", "someorg/toy"]) == 0
    assert calls == [("create", "someorg/toy", True),
                     ("upload", "someorg/toy", ["README.md", "classnames.json", "config.yaml", "model.safetensors"])]
    assert 'create_model("hf-hub:someorg/toy")' in (folder / "README.md").read_text()


@pytest.mark.parametrize("state, decay, expected", [
    ({"model": {}, "ema": {"module": {}}, "optimizer": {}}, 0.99, True),   # a training checkpoint with EMA
    ({"model": {}, "ema": None, "optimizer": {}}, 0.0, False),             # one without
    ({"model": {}, "weights": "ema"}, 0.0, True),                          # model_final.pyth says which
    ({"model": {}, "weights": "raw"}, 0.99, False),
    ({"model": {}}, 0.99, True),                                           # an older model_final.pyth: the config
    ({"model": {}}, 0.0, False),
])
def test_the_card_says_which_weights_a_checkpoint_exports(state, decay, expected):
    cfg = load_config(str(ROOT / "configs/toy/rs3d_tiny.yaml"), ["SOLVER.EMA_DECAY", str(decay)])
    assert exports_ema(state, cfg) is expected


def test_a_trained_runs_card_names_its_ema_weights(trained_toy, tmp_path):
    """model_final.pyth as the trainer writes it (the EMA model's weights alone, no `ema` entry)."""
    final = Path(trained_toy["out"]) / "model_final.pyth"
    assert load_checkpoint(str(final))["weights"] == "ema"
    assert export.main(["--checkpoint", str(final), "--format", "safetensors", "--output", str(tmp_path / "f")]) == 0
    card = (tmp_path / "f" / "README.md").read_text()
    assert "- Weights: the exponential moving average of the training weights, as safetensors." in card
    assert "(EMA model)" in card


def test_a_hub_name_is_fetched_once_per_process(run_dir, tmp_path, monkeypatch):
    """create_model reads a hub model's config and then its weights: one snapshot_download, not one per read (each is
    a request to the hub when online)."""
    import huggingface_hub

    from rs3d.checkpoint import hub

    folder = tmp_path / "shared"
    assert export.main(["--checkpoint", str(run_dir / "model_final.pyth"), "--format", "safetensors",
                        "--output", str(folder)]) == 0
    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append(repo_id)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(hub, "_RESOLVED", {})
    model = rs3d.create_model("hf-hub:someorg/once").eval()
    clip = torch.rand(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(clip), ema_model(run_dir)(clip))
    assert calls == ["someorg/once"]
