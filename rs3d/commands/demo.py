"""``rs3d-demo``: a local web page for a trained model. Drop or record a video and see its top classes, the
per-window timeline and the video with the labels drawn on it (``pip install rs3d[demo]`` brings Gradio).

    rs3d-demo --checkpoint output/model_final.pyth            # then open http://127.0.0.1:7860

--checkpoint takes what every command takes: a .pyth file, a pretrained folder or hf-hub:org/name. Trailing
KEY VALUE pairs override the checkpoint's config (e.g. TEST.NUM_ENSEMBLE_VIEWS 4)."""
from __future__ import annotations

import argparse
import socket
import tempfile

from rs3d.commands import base as cli
from rs3d.commands.base import UsageError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.make_parser(__doc__, "rs3d-demo")
    parser.add_argument("--checkpoint", required=True,
                        help="model_final.pyth, a training checkpoint, a pretrained folder or hf-hub:org/name")
    parser.add_argument("--cfg", help="config file (default: the config stored in the checkpoint)")
    parser.add_argument("--class-names", help="classnames.json, for checkpoints that carry no class names")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (CUDA when available)")
    parser.add_argument("--topk", type=int, default=5, help="classes shown with bars (default 5)")
    parser.add_argument("--window-sec", type=float, help="timeline window length (default: about one clip, >= 1 s)")
    parser.add_argument("--stride-sec", type=float, help="timeline window stride (default: half a window)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass")
    cli.add_opts_argument(parser)
    return parser.parse_args(argv)


def check_options(args: argparse.Namespace) -> None:
    """Numbers that cannot work and a device that is not there, as one line before anything is loaded."""
    cli.check_prediction_options(args, ("window_sec", "stride_sec"))
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")


def check_listen(host: str, port: int) -> None:
    """Refuse an address this machine cannot listen on (unknown host, port in use) before the model is loaded."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except OSError as exc:
        raise UsageError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None


def main(argv: list[str] | None = None) -> int:
    from rs3d.inference import demo

    args = parse_args(argv)
    check_options(args)
    check_listen(args.host, args.port)
    demo.require_gradio()  # before the model is loaded: the missing extra is the first thing to say
    from rs3d.inference import Predictor

    predictor = Predictor(args.cfg, args.checkpoint, args.device, args.topk, args.batch_size, args.opts,
                          args.class_names)
    with tempfile.TemporaryDirectory(prefix="rs3d-demo-") as work_dir:
        app = demo.build_app(predictor, work_dir, args.window_sec, args.stride_sec)
        try:
            app.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False, show_error=True,
                       theme=demo.local_theme())
        except OSError as exc:
            raise UsageError(f"--host {args.host} --port {args.port}: cannot listen there ({exc})") from None
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-demo`` console command."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
