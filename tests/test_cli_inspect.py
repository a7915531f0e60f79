"""``opensim-surrogate inspect FILE``: table summaries; user errors exit 2 with one stderr line."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from opensim_surrogate.cli import main


def _inspect(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opensim_surrogate", "inspect", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_inspect_shared_mot(data_dir: Path):
    path = data_dir / "schreiber2019" / "2014001" / "ik" / "C4_05" / "C4_05_ik.mot"
    proc = _inspect(path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "rows:       53" in out
    assert "columns:    39 (+ time)" in out
    assert "0.14 .. 0.66 s" in out
    assert "rate:       100 Hz" in out
    assert "inDegrees:  yes" in out


def test_inspect_renamed_labels_in_process(data_dir: Path, capsys):
    path = data_dir / "schreiber2019" / "2014001" / "scaling" / "2014001_staticMotion.mot"
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "renamed:    78 path-style labels" in out
    assert "... and 70 more" in out
    assert "/jointset/ground_pelvis/pelvis_tilt/speed -> pelvis_tilt_u" in out
    assert "inDegrees:  no" in out


def test_inspect_trc(data_dir: Path, capsys):
    path = data_dir / "schreiber2019" / "2014001" / "dynamic" / "2014001_C4_05.trc"
    assert main(["inspect", str(path), "--labels"]) == 0
    out = capsys.readouterr().out
    assert "markers:    52 (156 columns)   units: mm" in out
    assert "declared DataRate: 100 Hz" in out
    assert "L_IAS_X" in out


def test_inspect_bad_file_exit_2_one_line(tmp_path: Path):
    bad = tmp_path / "bad.sto"
    bad.write_text("x\nendheader\ntime\ta\n0\t1\n0.1\toops\n")
    proc = _inspect(bad)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{bad}:5" in lines[0] and "column a" in lines[0] and "oops" in lines[0]


@pytest.mark.parametrize("name, fragment", [("missing.mot", "not found"),
                                            ("notes.txt", "cannot inspect")])
def test_inspect_user_errors(tmp_path: Path, name: str, fragment: str):
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("hello\n")
    proc = _inspect(path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr


def test_inspect_osim(rajagopal_model: Path, capsys):
    try:
        has_reader = hasattr(importlib.import_module("opensim_surrogate.osim.model"), "read_model")
    except ImportError:
        has_reader = False
    code = main(["inspect", str(rajagopal_model)])
    captured = capsys.readouterr()
    if has_reader:
        assert code == 0, captured.err
        assert "muscles:     80" in captured.out
    else:
        assert code == 2 and "not yet supported" in captured.err
