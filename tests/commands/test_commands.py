"""Every command: its module has the console entry point setup.py names, and its tools/ script runs it."""
import os
import runpy
import sys

import pytest
from conftest import REPO_ROOT

ROOT = REPO_ROOT
SHIMS = {"train_net": "train", "test_net": "test", "predict": "predict", "export": "export",
         "check_dataset": "check_data", "prepare_dataset": "prepare_data", "make_toy_dataset": "make_toy_data",
         "compare": "compare", "scaling_table": "scaling_table", "model_table": "model_table",
         "submit": "submit", "demo": "demo"}


@pytest.mark.parametrize("script, module", sorted(SHIMS.items()))
def test_tool_script_and_console_command_show_help(script, module, monkeypatch, capsys):
    command = __import__(f"rs3d.commands.{module}", fromlist=["console_main"])
    assert callable(command.console_main)
    setup = open(os.path.join(ROOT, "setup.py")).read()
    assert f'"{module}"' in setup, f"setup.py has no console script for rs3d.commands.{module}"
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(os.path.join(ROOT, "tools", f"{script}.py"), run_name="__main__")
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
