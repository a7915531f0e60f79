from __future__ import annotations

from pathlib import Path

import pytest

from opensim_surrogate.errors import DataNotFoundError, SurrogateError, TableFormatError
from opensim_surrogate.paths import DATA_ENV, data_root


def test_data_root_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_root() == tmp_path.resolve()


def test_data_root_missing_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError) as exc:
        data_root()
    assert "nope" in str(exc.value) and DATA_ENV in str(exc.value)
    assert isinstance(exc.value, FileNotFoundError)


def test_default_data_root_is_shared_data(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    root = data_root(required=False)
    assert root.parts[-2:] == ("shared", "data")


def test_error_message_names_file_line_column():
    err = TableFormatError("bad cell", path=Path("a.mot"), line=12, column="knee_angle_r",
                           hint="fix it")
    assert str(err) == "a.mot:12 (column knee_angle_r): bad cell — fix it"
    assert isinstance(err, SurrogateError)
