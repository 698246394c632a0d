"""Deployment: the exported (EMA) model as a ``torch.export`` program, optionally ONNX, checked against eager.
Both files may go to any iopath handler (written locally, then moved or uploaded whole: ``rs3d.utils.atomic``)."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
from torch import nn

from rs3d.utils.atomic import atomic_path


@dataclass
class ExportReport:
    """What was written and how closely the exported program matches the eager model."""

    program_path: str
    input_shape: tuple[int, ...]
    max_abs_diff: float
    onnx_path: str | None = None
    onnx_error: str | None = None


def export_model(model: nn.Module, num_frames: int, crop_size: int, path: str, onnx_path: str | None = None,
                 batch_size: int = 2, seed: int = 0) -> ExportReport:
    """Export ``model`` (eval mode) for (N, 3, T, S, S) float clips with a dynamic batch; save it atomically,
    reload the saved bytes and compare its logits with eager ones on a random clip."""
    model = model.eval()
    device = next(model.parameters()).device  # the example must live where the model does (a CUDA model too)
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(batch_size, 3, num_frames, crop_size, crop_size, generator=generator).to(device)
    batch = torch.export.Dim("batch", min=1, max=1024)
    with torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        with atomic_path(path) as tmp:  # keeps the .pt2 name torch.export.save wants
            torch.export.save(program, tmp)
            reloaded = torch.export.load(tmp).module()  # the bytes that land at path (local temp file)
        check = torch.randn(batch_size + 1, 3, num_frames, crop_size, crop_size, generator=generator).to(device)
        diff = float((reloaded(check) - model(check)).abs().max())
    report = ExportReport(path, (-1, 3, num_frames, crop_size, crop_size), diff)
    if onnx_path:
        report.onnx_path, report.onnx_error = _export_onnx(model, example, onnx_path)
    return report


def _export_onnx(model: nn.Module, example: torch.Tensor, path: str) -> tuple[str | None, str | None]:
    """ONNX export when ``onnx`` is installed; returns (path, None) or (None, reason)."""
    if importlib.util.find_spec("onnx") is None:
        return None, "onnx is not installed (pip install onnx onnxscript)"
    try:
        with atomic_path(path) as tmp:
            torch.onnx.export(model, (example,), tmp, input_names=["clip"], output_names=["logits"],
                              dynamic_axes={"clip": {0: "batch"}, "logits": {0: "batch"}})
        return path, None
    except Exception as exc:  # exporter failures are reported, the torch.export program is still written
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
