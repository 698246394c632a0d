"""Export a trained model (EMA weights) with torch.export, and to ONNX when ``onnx`` is installed.

    python tools/export.py --checkpoint output/toy_rs3d_tiny/model_final.pyth --output model.pt2 [--onnx model.onnx]

The program is checked against the eager model on a random clip; load it with ``torch.export.load(path).module()``.
"""
import argparse

from rs3d.commands import base as cli
from rs3d.inference import Predictor
from rs3d.inference.export import export_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--cfg", help="config file (default: the one stored in the checkpoint)")
    parser.add_argument("--output", required=True, help="torch.export program (.pt2)")
    parser.add_argument("--onnx", help="also write ONNX here (needs the onnx package)")
    args = parser.parse_args()
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


def console_main() -> None:
    """Entry point of the ``rs3d-export`` console command (same as tools/export.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
