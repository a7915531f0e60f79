"""The console script: every subcommand has a working --help; user errors exit 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from opensim_surrogate.cli import command_modules, main

COMMANDS = [m.NAME for m in command_modules()]


def test_top_level_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "opensim_surrogate", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", COMMANDS)
def test_subcommand_help(name):
    proc = subprocess.run([sys.executable, "-m", "opensim_surrogate", name, "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage: opensim-surrogate " + name in proc.stdout


def test_console_script_installed():
    import shutil

    exe = shutil.which("opensim-surrogate") or str(
        __import__("pathlib").Path(sys.executable).parent / "opensim-surrogate")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "COMMAND" in proc.stdout


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2
