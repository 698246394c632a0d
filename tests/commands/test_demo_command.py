"""rs3d-demo's command line: every bad argument, a busy port and a missing Gradio are one ``error:`` line (exit 2)
before any model is loaded (the checkpoint named here does not exist, so loading it would say so instead)."""
import socket
import sys

import pytest

from rs3d.commands import base as cli
from rs3d.commands import demo


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def one_error_line(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        cli.run(lambda: demo.main(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port must be between 1 and 65535, got 0"),
    (["--port", "70000"], "--port must be between 1 and 65535, got 70000"),
    (["--topk", "0"], "--topk must be at least 1, got 0"),
    (["--batch-size", "-2"], "--batch-size must be at least 1, got -2"),
    (["--window-sec", "nan"], "--window-sec must be a positive number of seconds, got nan"),
    (["--stride-sec", "-1"], "--stride-sec must be a positive number of seconds, got -1.0"),
    (["--device", "tpu"], "--device must be auto, cpu or cuda[:N], got 'tpu'"),
    (["--host", "no-such-host.invalid"], "--host no-such-host.invalid --port 7860: cannot listen there"),
])
def test_bad_arguments_are_one_line_before_loading(args, message, tmp_path, capsys):
    line = one_error_line(["--checkpoint", str(tmp_path / "absent.pyth"), *args], capsys)
    assert message in line


def test_a_busy_port_is_one_line(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_error_line(["--checkpoint", str(tmp_path / "absent.pyth"), "--port", str(port)], capsys)
    assert line.startswith(f"error: --host 127.0.0.1 --port {port}: cannot listen there (")


def test_without_gradio_the_error_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError, as when not installed
    line = one_error_line(["--checkpoint", str(tmp_path / "absent.pyth"), "--port", free_port()], capsys)
    assert line == "error: rs3d-demo needs Gradio: pip install rs3d[demo]"


def test_a_missing_checkpoint_is_named(tmp_path, capsys):
    pytest.importorskip("gradio", reason="the demo extra is not installed (pip install rs3d[demo])")
    line = one_error_line(["--checkpoint", str(tmp_path / "absent.pyth"), "--port", free_port()], capsys)
    assert str(tmp_path / "absent.pyth") in line and "not found" in line
