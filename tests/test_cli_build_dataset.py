"""build-dataset configuration: per-corpus defaults and --set overrides."""
from __future__ import annotations

import pytest

from opensim_surrogate.cli import main
from opensim_surrogate.cli.build_dataset import corpus_config
from opensim_surrogate.reference.config import ReferenceConfig


def test_hamner_masks_frames_with_large_reserves_by_default():
    assert corpus_config("hamner2013", []).so_max_reserve == 10.0
    assert corpus_config("schreiber2019", []) == ReferenceConfig()


def test_set_overrides_parse_json_values():
    cfg = corpus_config("schreiber2019", ["lowpass_hz=8", "so_window=all", "add_reserves=false"])
    assert (cfg.lowpass_hz, cfg.so_window, cfg.add_reserves) == (8, "all", False)


def test_bad_set_is_usage_error(tmp_path, capsys):
    assert main(["build-dataset", "schreiber2019", "--out", str(tmp_path), "--set", "nope=1"]) == 2
    err = capsys.readouterr().err
    assert "nope=1" in err and len(err.strip().splitlines()) == 1
