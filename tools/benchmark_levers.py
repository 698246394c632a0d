#!/usr/bin/env python
"""The training step's speed levers side by side (issue 19): today's recipe step, the fused block tail, lowered
convolutions, both, and both under regional or whole-model torch.compile, all from the same weights.

Eager variants run in this process, taking turns step by step (warm-up, then timed steps: CUDA events on a GPU,
wall clock on the CPU); compiled variants each run in a child process with a fresh inductor cache and a time cap,
which also measures their compile time (the first step). Then one profiled step per variant, kernel time by group,
and every distinct conv shape of the network timed as Conv3d and lowered (forward, input and weight gradient, in
TFLOP/s). Last, what needs no device (rs3d/studies/traffic.py): the bytes each op group moves per step, the ops
that leave channels_last_3d, and the share of work skipping dropped samples would save. Exits 1 if a slow
convolution fallback (vol2col / slow_conv / im2col) ran.

    python tools/benchmark_levers.py --cfg configs/kinetics400/rs3d_50.yaml --batch-size 16      # a GPU
    python tools/benchmark_levers.py --cfg configs/toy/rs3d_tiny.yaml --batch-size 8 --frames 8 --crop 64  # CPU
    python tools/benchmark_levers.py --cfg configs/kinetics400/rs3d_50.yaml --batch-size 16 --amp 1 --anatomy-only
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time

import torch

from rs3d.commands import base as cli
from rs3d.config import load_config
from rs3d.models.factory import build_model
from rs3d.studies.levers import (
    KERNEL_GROUPS,
    LEVERS,
    RecipeStep,
    StepProfile,
    conv_shapes,
    profile_groups,
    round_robin,
    slow_fallbacks,
    time_conv_shape,
)
from rs3d.studies.speed import TRAIN_FLOPS_PER_MAC, mfu, peak_tflops
from rs3d.studies.traffic import drop_path_skip_share, layout_breaks, step_traffic
from rs3d.utils.complexity import count_gflops
from rs3d.utils.runtime import configure_speed
from rs3d.utils.tables import markdown_table

GROUPS = [g for g, _ in KERNEL_GROUPS] + ["other"]


def build(args: argparse.Namespace, lever_index: int, state: dict) -> torch.nn.Module:
    """The config's model with this lever's keys, loaded with the shared weights."""
    cfg = load_config(args.cfg, [*args.opts, *LEVERS[lever_index].overrides(), "DATA.NUM_FRAMES", str(args.frames),
                                 "DATA.TRAIN_CROP_SIZE", str(args.crop)])
    model = build_model(cfg, init=False)
    model.load_state_dict(state)
    return model


def synthetic_batch(args: argparse.Namespace, num_classes: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    clip = torch.rand(args.batch_size, 3, args.frames, args.crop, args.crop, generator=generator)
    labels = torch.randint(0, num_classes, (args.batch_size,), generator=generator)
    return clip.to(device), labels.to(device)


def resident_bytes(model: torch.nn.Module) -> int:
    """Weights, momentum and EMA copy of every parameter, plus buffers twice (model and EMA)."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return 3 * params + 2 * buffers


def _compiled_child(args: argparse.Namespace, index: int, state_path: str, queue: mp.Queue) -> None:
    try:
        configure_speed()
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="rs3d_inductor_"))
        device = torch.device(args.device)
        model = build(args, index, torch.load(state_path, weights_only=True))
        step = RecipeStep(model, device, args.amp, args.channels_last, LEVERS[index].compile, args.compile_backend)
        clip, labels = synthetic_batch(args, model.fc.out_features if hasattr(model, "fc") else 400, device)
        start = time.perf_counter()
        step(clip, labels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        compile_s = time.perf_counter() - start
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        timed = round_robin({"x": lambda: step(clip, labels)}, max(args.warmup - 1, 0), args.iters, device)["x"]
        peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0.0
        profile = profile_groups(lambda: step(clip, labels), device) if args.profile else None
        queue.put({"ms": timed["ms"], "peak_bytes": float(peak), "compile_s": compile_s,
                   **(vars(profile) if profile else {})})
    except Exception as e:  # reported in the table
        queue.put({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})


def run_compiled(args: argparse.Namespace, index: int, state_path: str) -> dict:
    """One compiled variant in a spawned child process, stopped after ``--compile-timeout`` seconds."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_compiled_child, args=(args, index, state_path, queue))
    proc.start()
    proc.join(args.compile_timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"error": f"did not finish within {args.compile_timeout} s"}
    if queue.empty():
        return {"error": f"child process died with exit code {proc.exitcode}"}
    return queue.get()


def print_anatomy(args: argparse.Namespace, base: torch.nn.Module, state: dict) -> None:
    """What the step moves and where its layout breaks, per distinct model of the chosen eager variants, counted
    without running it on the device (rs3d/studies/traffic.py): the decisions of issue 19's item 4 rest on these."""
    clip_shape = (args.batch_size, 3, args.frames, args.crop, args.crop)
    dtype = torch.bfloat16 if args.amp else torch.float32
    rows, seen = [], set()
    for i in args.levers:
        lever = LEVERS[i]
        if lever.compile or lever.fused_tail in seen:  # the conv route changes no byte and no layout
            continue
        seen.add(lever.fused_tail)
        model = build(args, i, state)
        traffic = step_traffic(model, clip_shape, dtype)
        breaks = layout_breaks(model, (2, 3, min(args.frames, 8), 32, 32))
        groups = traffic.group_gb()
        rows.append([f"fused tail {lever.fused_tail}"] + [f"{groups.get(g, 0.0):.3g}" for g in GROUPS]
                    + [f"{traffic.total_gb():.3g}", str(sum(traffic.ops.values())),
                       ", ".join(f"{op} ({phase}) x{n}" for (phase, op), n in sorted(breaks.items())) or "none"])
    if rows:
        print(f"\nbytes read + written by one forward + backward (GB, meta device, {str(dtype)[6:]}, batch "
              f"{args.batch_size}), ops dispatched, and full-size writes that leave channels_last_3d:")
        print(markdown_table(["model"] + GROUPS + ["total GB", "ops", "layout breaks"], rows))
    share = drop_path_skip_share(base, clip_shape)
    print(f"\nskipping the residual branch of dropped samples would save {100 * share:.1f}% of the conv multiply-adds "
          "in expectation; not done: BatchNorm would then take its statistics over the kept samples only, "
          "another function than the reference's.")


def make_parser() -> argparse.ArgumentParser:
    """The command line (tools/gpu_checks.sh's calls are checked against it by the tests)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", default="configs/kinetics400/rs3d_50.yaml", help="config file (an RS3D model)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per step")
    parser.add_argument("--frames", type=int, help="clip length (default: the config's)")
    parser.add_argument("--crop", type=int, help="crop size (default: the config's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", type=int, choices=[0, 1], help="bf16 autocast (default: on for CUDA)")
    parser.add_argument("--channels-last", type=int, choices=[0, 1], default=1)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant")
    parser.add_argument("--iters", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--levers", type=int, nargs="+", default=list(range(len(LEVERS))),
                        help="which variants, by index: " + "; ".join(f"{i} {v.name}" for i, v in enumerate(LEVERS)))
    parser.add_argument("--compile-timeout", type=int, default=300, help="seconds a compiled variant may take")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--profile", type=int, choices=[0, 1], default=1, help="one profiled step per variant")
    parser.add_argument("--layers", type=int, choices=[0, 1], default=1, help="per-conv-shape rows")
    parser.add_argument("--layer-iters", type=int, default=10)
    parser.add_argument("--anatomy", type=int, choices=[0, 1], default=1,
                        help="bytes per op group (meta device), layout breaks (CPU) and the drop-path skip share")
    parser.add_argument("--anatomy-only", action="store_true",
                        help="print only that (seconds on a CPU at any batch and clip size) and exit")
    parser.add_argument("--json", help="also write every number to this JSON file")
    cli.add_opts_argument(parser)
    return parser


def main() -> int:
    args = make_parser().parse_args()
    cfg = load_config(args.cfg, args.opts)
    args.frames, args.crop = args.frames or cfg.DATA.NUM_FRAMES, args.crop or cfg.DATA.TRAIN_CROP_SIZE
    device = torch.device(args.device)
    args.amp = bool(device.type == "cuda" if args.amp is None else args.amp)
    args.channels_last = bool(args.channels_last)
    configure_speed()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"device {gpu or f'CPU ({torch.get_num_threads()} threads)'}; {args.cfg}, batch {args.batch_size}, "
          f"{args.frames}x{args.crop}x{args.crop}, {'bf16' if args.amp else 'fp32'}, "
          f"{'channels_last_3d' if args.channels_last else 'NCDHW'}", flush=True)

    torch.manual_seed(0)
    base = build(args, 0, build_model(load_config(args.cfg, [*args.opts, *LEVERS[0].overrides()]),
                                      init=False).state_dict())
    state = base.state_dict()
    if args.anatomy_only:
        print_anatomy(args, base, state)
        return 0
    gmacs = count_gflops(base, (args.frames, args.crop, args.crop))
    clip, labels = synthetic_batch(args, cfg.MODEL.NUM_CLASSES, device)
    eager = [i for i in args.levers if not LEVERS[i].compile]
    steps = {LEVERS[i].name: RecipeStep(build(args, i, state), device, args.amp, args.channels_last) for i in eager}
    results = {name: dict(r) for name, r in round_robin(
        {name: (lambda s=s: s(clip, labels)) for name, s in steps.items()}, args.warmup, args.iters, device).items()}
    for name, step in steps.items():
        step_peak = results[name].pop("step_peak_bytes")
        if device.type == "cuda":  # the CPU allocator keeps no peak per step
            results[name]["peak_bytes"] = step_peak + resident_bytes(step.model)
        if args.profile:
            results[name].update(vars(profile_groups(lambda s=step: s(clip, labels), device)))
    del steps
    with tempfile.TemporaryDirectory() as tmp:
        state_path = os.path.join(tmp, "state.pt")
        torch.save(state, state_path)
        for i in args.levers:
            if LEVERS[i].compile:
                print(f"compiling: {LEVERS[i].name} ...", file=sys.stderr, flush=True)
                results[LEVERS[i].name] = run_compiled(args, i, state_path)

    peak = peak_tflops(gpu, args.amp) if gpu else None
    rows, group_rows, slow = [], [], []
    reference_ms = next((r["ms"] for r in results.values() if "ms" in r), None)
    for i in args.levers:
        name, r = LEVERS[i].name, results[LEVERS[i].name]
        if "error" in r:
            rows.append([name, "failed", "-", "-", "-", "-", "-", r["error"]])
            continue
        clips = args.batch_size / (r["ms"] / 1e3)
        u = mfu(clips, gmacs, peak)
        rows.append([name, f"{r['ms']:.1f}", f"{clips:.1f}", f"{reference_ms / r['ms']:.2f}",
                     f"{r['peak_bytes'] / 1e9:.2f}" if r.get("peak_bytes") else "n/a",
                     f"{clips * TRAIN_FLOPS_PER_MAC * gmacs / 1e3:.3g}", f"{100 * u:.1f}%" if u else "n/a",
                     f"{r['compile_s']:.1f}" if "compile_s" in r else "-"])
        if r.get("groups"):
            busy = StepProfile(r["groups"], r["kernels"], []).busy_share(r["ms"])
            group_rows.append([name] + [f"{r['groups'].get(g, 0.0):.1f}" for g in GROUPS]
                              + [str(r["kernels"]), f"{100 * busy:.0f}%" if device.type == "cuda" else "-"])
        slow += [f"{name}: {k}" for k in slow_fallbacks(r.get("names", []))]
    print(markdown_table(["variant", "ms/step", "clips/s", "x today", "peak GB", "TFLOP/s", "MFU", "compile s"], rows))
    if group_rows:
        unit, count = (("GPU kernel time", "kernels") if device.type == "cuda"
                       else ("CPU self time of aten ops", "aten calls"))
        print(f"\none profiled step, {unit} by group (ms); busy (GPU) = kernel time over the timed step's (low: the "
              "GPU waits between kernels, what CUDA graphs would remove):")
        print(markdown_table(["variant"] + GROUPS + [count, "busy"], group_rows))
    if args.anatomy:
        print_anatomy(args, base, state)

    layer_rows = []
    if args.layers:
        dtype = torch.bfloat16 if args.amp else torch.float32
        for shape in conv_shapes(base, (args.batch_size, 3, args.frames, args.crop, args.crop)):
            a = time_conv_shape(shape, "conv3d", device, dtype, args.layer_iters)
            b = time_conv_shape(shape, "lowered", device, dtype, args.layer_iters)
            total = sum(a[f"{p}_ms"] for p in ("fwd", "dgrad", "wgrad")) / \
                sum(b[f"{p}_ms"] for p in ("fwd", "dgrad", "wgrad"))
            layer_rows.append(["x".join(map(str, shape.kernel)), "x".join(map(str, shape.stride)),
                               f"{shape.in_channels}->{shape.out_channels}", "x".join(map(str, shape.input_shape[2:])),
                               str(shape.count)] + [f"{a[p]:.3g} / {b[p]:.3g}" for p in ("fwd", "dgrad", "wgrad")]
                              + [f"{total:.2f}"])
        print("\nper conv shape, TFLOP/s as Conv3d / lowered (channels_last_3d, "
              f"{'bf16' if args.amp else 'fp32'}, batch {args.batch_size}):")
        print(markdown_table(["kernel", "stride", "channels", "input TxHxW", "count", "forward", "input grad",
                              "weight grad", "x (time, all three)"], layer_rows))
    if args.json:
        with open(args.json, "w") as f:  # a local report file next to the command, not storage
            json.dump({"args": {k: v for k, v in vars(args).items()}, "gmacs_per_clip": gmacs,
                       "variants": {k: {kk: vv for kk, vv in v.items() if kk != "names"} for k, v in results.items()},
                       "layers": layer_rows}, f, indent=1, default=str)
    if slow:
        print("FAIL: slow convolution fallback kernels ran:\n  " + "\n  ".join(slow), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main)
