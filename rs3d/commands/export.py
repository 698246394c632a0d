"""Export a trained model (EMA weights) with torch.export (and ONNX when ``onnx`` is installed), or as a pretrained
folder to share (safetensors, config, class names, model card), optionally pushed to the Hugging Face Hub.

    python tools/export.py --checkpoint output/toy_rs3d_tiny/model_final.pyth --output model.pt2 [--onnx model.onnx]
    rs3d-export --checkpoint output/toy_rs3d_tiny/model_final.pyth --format safetensors --output toy_model \\
        [--push-to-hub ORG/NAME]

The program is checked against the eager model on a random clip; load it with ``torch.export.load(path).module()``.
A pretrained folder loads with ``rs3d.create_model(FOLDER)``, ``--checkpoint FOLDER`` in every command and
``MODEL.INIT.FROM FOLDER``; once pushed, the same with ``hf-hub:ORG/NAME``.
"""
import argparse

from rs3d.commands import base as cli
from rs3d.inference import Predictor
from rs3d.inference.export import export_model
from rs3d.utils.writable import check_output_file, check_output_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--cfg", help="config file (default: the one stored in the checkpoint)")
    parser.add_argument("--output", required=True,
                        help="torch.export program (.pt2), or the folder to write with --format safetensors")
    parser.add_argument("--onnx", help="also write ONNX here (needs the onnx package)")
    parser.add_argument("--format", choices=["pt2", "safetensors"], default="pt2",
                        help="pt2: a torch.export program; safetensors: a pretrained folder with a model card")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME",
                        help="with --format safetensors: upload the folder to the Hugging Face Hub as ORG/NAME")
    args = parser.parse_args(argv)
    (check_output_folder if args.format == "safetensors" else check_output_file)(args.output, "--output")
    if args.onnx:
        check_output_file(args.onnx, "--onnx")
    if args.format == "safetensors":
        return export_pretrained(args)
    if args.push_to_hub:
        parser.error("--push-to-hub needs --format safetensors")
    predictor = Predictor(args.cfg, args.checkpoint, device="cpu")
    cfg = predictor.cfg
    report = export_model(predictor.model.float(), cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, args.output,
                          args.onnx)
    norm = ("x / 255" if cfg.DATA.NORMALIZATION == "unit" else
            f"(x / 255 - {list(cfg.DATA.MEAN)}) / {list(cfg.DATA.STD)} per RGB channel")
    print(f"wrote {report.program_path}: input float32 (N, 3, {cfg.DATA.NUM_FRAMES}, {cfg.DATA.TEST_CROP_SIZE}, "
          f"{cfg.DATA.TEST_CROP_SIZE}) with N dynamic, RGB normalised as {norm}; output (N, "
          f"{cfg.MODEL.NUM_CLASSES}) logits over {', '.join(predictor.class_names[:4])}...")
    print(f"exported vs eager on a random clip: max abs logit difference {report.max_abs_diff:.2e}")
    if args.onnx:
        print(f"ONNX: {report.onnx_path}" if report.onnx_path else f"ONNX not written: {report.onnx_error}")
    return 0 if report.max_abs_diff < 1e-3 else 1


def export_pretrained(args: argparse.Namespace) -> int:
    """``--format safetensors``: the pretrained folder, reloaded and checked against the checkpoint's logits."""
    import torch

    from rs3d.inference.sharing import push_to_hub, save_pretrained
    from rs3d.models import create_model

    written = save_pretrained(args.checkpoint, args.output, args.cfg, repo_id=args.push_to_hub or "ORG/NAME")
    reference = Predictor(args.cfg, args.checkpoint, device="cpu")
    cfg = reference.cfg
    clip = torch.rand(2, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
    reloaded = create_model(args.output).eval()
    with torch.no_grad():
        diff = (reloaded(clip) - reference.model.float().cpu()(clip)).abs().max().item()
    print(f"wrote {', '.join(written)}; reloaded vs the checkpoint on a random clip: max abs logit difference "
          f"{diff:.2e}")
    if diff > 1e-5:
        return 1
    if args.push_to_hub:
        print(f"pushed to {push_to_hub(args.output, args.push_to_hub)}")
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-export`` console command (same as tools/export.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
