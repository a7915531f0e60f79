"""opensim_surrogate.io.tables: read/write OpenSim .mot/.sto/.trc, checked against OpenSim 4.6."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import opensim
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opensim_surrogate.errors import (
    LabelError,
    MissingFileError,
    TableFormatError,
    TableValueError,
    TimeColumnError,
)
from opensim_surrogate.io import (
    TableHeader,
    read_table,
    rotational_columns,
    to_degrees,
    to_radians,
    write_table,
)
from opensim_surrogate.paths import data_root

opensim.Logger.setLevelString("error")

DATA = data_root()
TABLES = sorted([*DATA.rglob("*.mot"), *DATA.rglob("*.sto")])
TRCS = sorted(DATA.rglob("*.trc"))

#: Shared files that OpenSim 4.6's TimeSeriesTable cannot read, with the reason. None today:
#: every shared .mot/.sto (OpenSim 4 headers, old SIMM headers, path-style labels) loads.
OPENSIM_CANNOT_READ: dict[str, str] = {}


def _rel(p: Path) -> str:
    return str(p.relative_to(DATA))


def _opensim_table(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    tab = opensim.TimeSeriesTable(str(path))
    return (list(tab.getColumnLabels()), np.asarray(tab.getIndependentColumn(), dtype=float),
            tab.getMatrix().to_numpy())


def _storage_column(path: Path, label: str) -> np.ndarray:
    sto = opensim.Storage(str(path))
    arr = opensim.ArrayDouble()
    sto.getDataColumn(label, arr)
    return np.array([arr.get(i) for i in range(arr.getSize())])


def _write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode())
    return p


HDR = "test\nversion=1\nnRows=3\nnColumns=3\ninDegrees=no\nendheader\n"
GOOD_ROWS = "0\t1\t2\n0.01\t3\t4\n0.02\t5\t6\n"


# --------------------------------------------------------------------------------------
# 1. cross-check against OpenSim on every shared table
# --------------------------------------------------------------------------------------
def test_shared_data_has_tables():
    assert len(TABLES) >= 200 and len(TRCS) >= 50
    assert any(p.name.endswith("_grf.mot") for p in TABLES)
    assert any(p.name.endswith("_ikMarkerErrors.sto") for p in TABLES)


@pytest.mark.parametrize("path", TABLES, ids=_rel)
def test_matches_opensim_timeseriestable(path: Path):
    ours = read_table(path, rename_paths=False)
    try:
        labels, time, values = _opensim_table(path)
    except RuntimeError as exc:
        assert _rel(path) in OPENSIM_CANNOT_READ, f"OpenSim cannot read {path}: {exc}"
        return
    assert _rel(path) not in OPENSIM_CANNOT_READ
    assert list(ours.columns) == labels
    assert ours.index.name == "time"
    np.testing.assert_allclose(ours.index.to_numpy(), time, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.to_numpy(), values, rtol=1e-9, atol=1e-12)
    # renaming only changes path-style labels, and records every change
    renamed = read_table(path)
    hdr = renamed.attrs["opensim_header"]
    assert isinstance(hdr, TableHeader) and hdr.kind == path.suffix[1:]
    back = {new: old for old, new in hdr.renamed.items()}
    assert [back.get(c, c) for c in renamed.columns] == labels
    assert all(not c.startswith("/") for c in renamed.columns)


@pytest.mark.parametrize("path", TRCS[::6], ids=_rel)
def test_trc_matches_opensim(path: Path):
    ours = read_table(path)
    tab = opensim.TimeSeriesTableVec3(str(path)).flatten(["_X", "_Y", "_Z"])
    assert list(ours.columns) == list(tab.getColumnLabels())
    np.testing.assert_array_equal(ours.index.to_numpy(), np.asarray(tab.getIndependentColumn()))
    np.testing.assert_array_equal(ours.to_numpy(), tab.getMatrix().to_numpy())
    hdr = ours.attrs["opensim_header"]
    assert hdr.kind == "trc" and hdr.units == "mm" and hdr.data_rate == 100.0
    assert [f"{m}_X" for m in hdr.markers] == list(ours.columns[::3])


def test_trc_missing_markers_are_nan_like_opensim(tmp_path: Path):
    src = TRCS[0].read_text().split("\n")
    cells = src[8].split("\t")
    cells[2:5] = ["", "", ""]  # first marker missing in the 3rd data row
    src[8] = "\t".join(cells)
    p = _write(tmp_path, "gap.trc", "\n".join(src))
    ours = read_table(p)
    tab = opensim.TimeSeriesTableVec3(str(p)).flatten(["_X", "_Y", "_Z"])
    theirs = tab.getMatrix().to_numpy()
    assert np.isnan(ours.iloc[2, :3]).all() and not np.isnan(ours.iloc[2, 3:]).any()
    np.testing.assert_array_equal(ours.to_numpy(), theirs)  # NaN in the same places


def test_old_simm_header_shared_file():
    path = DATA / "hamner2013" / "subject01" / "ik" / "Run_2.mot"
    df = read_table(path)
    hdr = df.attrs["opensim_header"]
    assert hdr.name == "Run_20002"
    assert hdr.in_degrees is None  # SIMM header does not say (OpenSim's Storage assumes degrees)
    assert hdr.metadata["datacolumns"] == str(df.shape[1] + 1)
    assert hdr.metadata["datarows"] == str(len(df))
    assert hdr.metadata["range"].split()[0] == "0.090000"
    assert "# SIMM Motion File Header:" in hdr.comments
    assert df.index[0] == pytest.approx(0.09)


def test_path_style_shared_file(caplog):
    path = DATA / "schreiber2019" / "2014001" / "scaling" / "2014001_staticMotion.mot"
    with caplog.at_level(logging.INFO, logger="opensim_surrogate.io.tables"):
        df = read_table(path)
    hdr = df.attrs["opensim_header"]
    assert hdr.renamed["/jointset/hip_r/hip_flexion_r/value"] == "hip_flexion_r"
    assert hdr.renamed["/jointset/hip_r/hip_flexion_r/speed"] == "hip_flexion_r_u"
    assert len(hdr.renamed) == df.shape[1]
    assert "renamed" in caplog.text and str(path) in caplog.text


# --------------------------------------------------------------------------------------
# 2. round trips
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", [
    "hamner2013/subject01/expData/Run_2_grf.mot",
    "hamner2013/subject01/ik/Run_2.mot",
    "schreiber2019/2014001/ik/C4_05/C4_05_ik.mot",
    "schreiber2019/2014001/scaling/2014001_staticMotion.mot",
])
def test_round_trip_shared(rel: str, tmp_path: Path):
    df = read_table(DATA / rel)
    out = write_table(df, tmp_path / "sub" / ("copy" + Path(rel).suffix))
    assert out.exists() and out.parent.name == "sub"
    labels, time, values = _opensim_table(out)
    assert labels == list(df.columns)
    np.testing.assert_array_equal(time, df.index.to_numpy())
    np.testing.assert_array_equal(values, df.to_numpy())
    sto = opensim.Storage(str(out))
    assert sto.getSize() == len(df)
    col = df.columns[3]
    np.testing.assert_array_equal(_storage_column(out, col), df[col].to_numpy())
    back = read_table(out)
    assert list(back.columns) == list(df.columns)
    np.testing.assert_array_equal(back.to_numpy(), df.to_numpy())
    np.testing.assert_array_equal(back.index.to_numpy(), df.index.to_numpy())
    h0, h1 = df.attrs["opensim_header"], back.attrs["opensim_header"]
    assert h1.name == h0.name and h1.version == 1
    assert h1.in_degrees == (h0.in_degrees or False)
    head = out.read_text().split("\n")[:7]
    assert head[1:6] == ["version=1", f"nRows={len(df)}", f"nColumns={df.shape[1] + 1}",
                         f"inDegrees={'yes' if h1.in_degrees else 'no'}", "endheader"]


def test_write_options_and_defaults(tmp_path: Path):
    df = pd.DataFrame({"a": [1.0, 2.0]}, index=pd.Index([0.0, 0.5], name="time"))
    p = write_table(df, tmp_path / "x.sto", name="my table", in_degrees=True)
    h = read_table(p).attrs["opensim_header"]
    assert (h.name, h.in_degrees, h.kind) == ("my table", True, "sto")
    p2 = write_table(df, tmp_path / "y.mot")
    h2 = read_table(p2).attrs["opensim_header"]
    assert (h2.name, h2.in_degrees, h2.kind) == ("y", False, "mot")
    with pytest.raises(TableFormatError, match="trc"):
        write_table(df, tmp_path / "z.trc")


@pytest.mark.parametrize("df, exc, match", [
    (pd.DataFrame({"a b": [1.0]}, index=[0.0]), LabelError, "whitespace"),
    (pd.DataFrame({"time": [1.0]}, index=[0.0]), LabelError, "time"),
    (pd.DataFrame([[1.0, 2.0]], columns=["a", "a"], index=[0.0]), LabelError, "duplicated"),
    (pd.DataFrame({"a": [1.0, 2.0]}, index=[0.1, 0.1]), TimeColumnError, "row 2"),
    (pd.DataFrame({"a": [1.0, np.nan]}, index=[0.0, 0.1]), TableValueError, "row 2"),
    (pd.DataFrame({"a": [1.0, np.inf]}, index=[0.0, 0.1]), TableValueError, "not finite"),
])
def test_write_refuses_bad_frames(df, exc, match, tmp_path: Path):
    with pytest.raises(exc, match=match) as info:
        write_table(df, tmp_path / "bad.sto")
    assert "bad.sto" in str(info.value)
    assert not (tmp_path / "bad.sto").exists()


_label = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,15}", fullmatch=True).filter(lambda s: s != "time")
_value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e-300, max_value=1e-300, allow_nan=False),  # tiny incl. subnormals
    st.sampled_from([0.0, -0.0, 1e308, -1.7976931348623157e308, 5e-324, 0.1, 1 / 3]),
)


@st.composite
def _frames(draw) -> pd.DataFrame:
    n_rows = draw(st.integers(1, 12))
    labels = draw(st.lists(_label, min_size=1, max_size=6, unique=True))
    times = sorted(draw(st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
        min_size=n_rows, max_size=n_rows, unique=True)))
    values = draw(st.lists(st.lists(_value, min_size=len(labels), max_size=len(labels)),
                           min_size=n_rows, max_size=n_rows))
    return pd.DataFrame(np.array(values, dtype=float).reshape(n_rows, len(labels)),
                        index=pd.Index(times, name="time"), columns=labels)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(df=_frames())
def test_round_trip_property(df: pd.DataFrame, tmp_path: Path):
    p = write_table(df, tmp_path / "prop.sto")
    back = read_table(p)
    assert list(back.columns) == list(df.columns)
    np.testing.assert_array_equal(back.index.to_numpy(), df.index.to_numpy())
    np.testing.assert_array_equal(back.to_numpy(), df.to_numpy())  # bit-identical
    labels, time, values = _opensim_table(p)
    assert labels == list(df.columns)
    np.testing.assert_array_equal(time, df.index.to_numpy())
    np.testing.assert_array_equal(values, df.to_numpy())


# --------------------------------------------------------------------------------------
# 3. bad inputs raise the specific error naming file and line; odd layouts parse
# --------------------------------------------------------------------------------------
BAD_CASES = {
    # name: (file text, exception, line, column or None, message fragment)
    "no_endheader": ("name\nversion=1\ntime\ta\n0\t1\n", TableFormatError, 4, None, "endheader"),
    "csv": ("time,a,b\n0,1,2\n0.1,3,4\n", TableFormatError, 3, None, "endheader"),
    "bad_version": ("name\nversion=one\nendheader\ntime\ta\n0\t1\n", TableFormatError, 2, None,
                    "version"),
    "bad_in_degrees": ("name\ninDegrees=maybe\nendheader\ntime\ta\n0\t1\n", TableFormatError, 2,
                       None, "inDegrees"),
    "no_labels": ("name\nendheader\n", TableFormatError, 3, None, "label"),
    "not_time": (HDR.replace("nRows", "x") + "frame\ta\tb\n" + GOOD_ROWS, TableFormatError, 7,
                 "frame", "time"),
    "short_row": (HDR + "time\ta\tb\n0\t1\t2\n0.01\t3\n0.02\t5\t6\n", TableFormatError, 9, None,
                  "2 values"),
    "long_row": (HDR + "time\ta\tb\n0\t1\t2\n0.01\t3\t4\n0.02\t5\t6\t7\n", TableFormatError, 10,
                 None, "4 values"),
    "fewer_labels": (HDR + "time\ta\n" + GOOD_ROWS, TableFormatError, 8, None, "3 values"),
    "text_cell": (HDR + "time\ta\tb\n0\t1\t2\n0.01\t3\tabc\n0.02\t5\t6\n", TableValueError, 9,
                  "b", "non-numeric"),
    "fortran_exp": (HDR + "time\ta\tb\n0\t1D3\t2\n", TableValueError, 8, "a", "non-numeric"),
    "nan_cell": (HDR + "time\ta\tb\n0\t1\t2\n0.01\tnan\t4\n", TableValueError, 9, "a", "non-finite"),
    "inf_cell": (HDR + "time\ta\tb\n0\t1\t2\n0.01\t3\t-Inf\n", TableValueError, 9, "b", "non-finite"),
    "overflow": (HDR + "time\ta\tb\n0\t1e999\t2\n", TableValueError, 8, "a", "infinity"),
    "nan_time": (HDR + "time\ta\tb\nNaN\t1\t2\n", TableValueError, 8, "time", "non-finite"),
    "dup_label": (HDR + "time\ta\ta\n" + GOOD_ROWS, LabelError, 7, "a", "duplicated"),
    "empty_label": (HDR + "time\ta\t \tb\n0\t1\t2\t3\n", LabelError, 7, None, "empty label"),
    "time_back": (HDR + "time\ta\tb\n0\t1\t2\n0.02\t3\t4\n\n0.01\t5\t6\n", TimeColumnError, 11,
                  "time", "does not increase"),
    "time_repeat": (HDR + "time\ta\tb\n0\t1\t2\n0\t3\t4\n", TimeColumnError, 9, "time",
                    "does not increase"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_raises_specific_error(case: str, tmp_path: Path):
    text, exc, line, column, fragment = BAD_CASES[case]
    path = _write(tmp_path, f"{case}.sto", text)
    with pytest.raises(exc) as info:
        read_table(path)
    err = info.value
    assert type(err) is exc, f"{type(err).__name__}: {err}"
    msg = str(err)
    assert err.path == path and err.line == line, msg
    assert f"{path}:{line}" in msg and fragment in msg
    if column is not None:
        assert err.column == column and f"column {column}" in msg


def test_missing_file(tmp_path: Path):
    with pytest.raises(MissingFileError) as info:
        read_table(tmp_path / "nope.mot")
    assert "nope.mot" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_png_is_not_a_table(tmp_path: Path):
    png = tmp_path / "plot.mot"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(TableFormatError, match="binary") as info:
        read_table(png)
    assert f"{png}:1" in str(info.value)


def test_directory_is_not_a_table(tmp_path: Path):
    with pytest.raises(TableFormatError, match="directory"):
        read_table(tmp_path)


def test_bad_trc(tmp_path: Path):
    src = TRCS[0].read_text().split("\n")
    assert src[5] == "" and src[7].endswith("\t")  # shared .trc rows end with a tab
    src[7] = src[7].rstrip("\t").rsplit("\t", 1)[0] + "\tx\t"  # last cell of the 2nd data row
    p = _write(tmp_path, "bad.trc", "\n".join(src))
    with pytest.raises(TableValueError) as info:
        read_table(p)
    assert info.value.line == 8 and info.value.column.endswith("_Z")
    p2 = _write(tmp_path, "notrc.trc", "hello\n" * 6)
    with pytest.raises(TableFormatError, match="PathFileType"):
        read_table(p2)


@pytest.mark.parametrize("layout", ["crlf", "cr", "trailing_tabs", "spaces", "mixed_ws",
                                    "blank_lines", "bom"])
def test_odd_layouts_parse(layout: str, tmp_path: Path):
    text, newline = HDR + "time\ta\tb\n" + GOOD_ROWS, "\n"
    if layout == "crlf":
        newline = "\r\n"
    elif layout == "cr":
        newline = "\r"
    elif layout == "trailing_tabs":
        text = HDR + "time\ta\tb\t\n" + GOOD_ROWS.replace("\n", "\t\t \n")
    elif layout == "spaces":
        text = HDR + "time a b\n" + GOOD_ROWS.replace("\t", "   ")
    elif layout == "mixed_ws":
        text = HDR + "time\ta\tb\n" + "  0 \t 1\t2\n0.01\t\t3  4\n0.02\t5\t6   \n"
    elif layout == "blank_lines":
        text = HDR + "\ntime\ta\tb\n\n" + GOOD_ROWS.replace("\n", "\n\n")
    elif layout == "bom":
        text = "\ufeff" + text
    df = read_table(_write(tmp_path, f"{layout}.sto", text, newline))
    assert list(df.columns) == ["a", "b"]
    np.testing.assert_array_equal(df.index.to_numpy(), [0.0, 0.01, 0.02])
    np.testing.assert_array_equal(df.to_numpy(), [[1, 2], [3, 4], [5, 6]])
    h = df.attrs["opensim_header"]
    assert (h.name, h.version, h.in_degrees) == ("test", 1, False)


def test_doubled_tab_in_labels_collapses_like_opensim(tmp_path: Path, caplog):
    p = _write(tmp_path, "dbl.sto", HDR + "time\ta\t\tb\n" + GOOD_ROWS)
    labels, _, values = _opensim_table(p)
    with caplog.at_level(logging.WARNING, logger="opensim_surrogate.io.tables"):
        df = read_table(p)
    assert list(df.columns) == labels == ["a", "b"]
    np.testing.assert_array_equal(df.to_numpy(), values)
    assert "doubled tabs" in caplog.text


def test_capitalised_time_label_accepted(tmp_path: Path):
    df = read_table(_write(tmp_path, "cap.sto", HDR + "Time\ta\tb\n" + GOOD_ROWS))
    assert df.index.name == "time" and list(df.columns) == ["a", "b"]


def test_crlf_matches_opensim(tmp_path: Path):
    p = _write(tmp_path, "crlf.mot", HDR + "time\ta\tb\n" + GOOD_ROWS, "\r\n")
    labels, time, values = _opensim_table(p)
    df = read_table(p)
    assert list(df.columns) == labels
    np.testing.assert_array_equal(df.to_numpy(), values)


def test_synthetic_simm_header_and_name_line(tmp_path: Path):
    text = ("walk_trial\n# SIMM Motion File Header:\nname walk\ndatacolumns 3\ndatarows 3\n"
            "otherdata 1\nrange 0 0.02\nsome free text\nfoo=bar\nendheader\ntime\ta\tb\n" + GOOD_ROWS)
    df = read_table(_write(tmp_path, "simm.mot", text))
    h = df.attrs["opensim_header"]
    assert h.name == "walk_trial" and h.kind == "mot" and h.version is None
    assert h.metadata["name"] == "walk" and h.metadata["datacolumns"] == "3"
    assert h.metadata["foo"] == "bar" and h.metadata["range"] == "0 0.02"
    assert h.comments == ["# SIMM Motion File Header:", "some free text"]


def test_path_style_labels(tmp_path: Path, caplog):
    labels = ["/jointset/hip_r/hip_flexion_r/value", "/jointset/hip_r/hip_flexion_r/speed",
              "/forceset/soleus_r", "/forceset/soleus_r/activation", "plain"]
    rows = "\n".join("\t".join([str(t)] + ["1.5"] * 5) for t in (0, 0.1)) + "\n"
    p = _write(tmp_path, "states.sto", HDR + "\t".join(["time", *labels]) + "\n" + rows)
    with caplog.at_level(logging.INFO, logger="opensim_surrogate.io.tables"):
        df = read_table(p)
    assert list(df.columns) == ["hip_flexion_r", "hip_flexion_r_u", "soleus_r",
                                "soleus_r.activation", "plain"]
    assert df.attrs["opensim_header"].renamed == dict(zip(labels[:4], df.columns[:4]))
    assert "renamed 4 path-style labels" in caplog.text
    raw = read_table(p, rename_paths=False)
    assert list(raw.columns) == labels and raw.attrs["opensim_header"].renamed == {}


def test_path_style_collision_keeps_paths(tmp_path: Path, caplog):
    labels = ["/jointset/a/knee/value", "/jointset/b/knee/value", "hip"]
    p = _write(tmp_path, "clash.sto", HDR + "\t".join(["time", *labels]) + "\n0\t1\t2\t3\n")
    with caplog.at_level(logging.WARNING, logger="opensim_surrogate.io.tables"):
        df = read_table(p)
    assert list(df.columns) == labels
    assert "collide" in caplog.text


def test_more_labels_than_columns_keeps_first_labels_like_storage(tmp_path: Path, caplog):
    """SO force files may list more labels than values. OpenSim's TimeSeriesTable refuses
    them; opensim.Storage keeps all labels and fills values positionally (first labels), so we
    keep the first N labels and drop (and report) the rest."""
    text = (HDR + "time\tsoleus_r\tgasmed_r\treserve_x\tcalcn_r_Fx\n"
            "0\t10.5\t20.25\n0.01\t11.5\t21.25\n0.02\t12.5\t22.25\n")
    p = _write(tmp_path, "so_force.sto", text)
    with pytest.raises(RuntimeError, match="number of columns"):
        opensim.TimeSeriesTable(str(p))
    with caplog.at_level(logging.WARNING, logger="opensim_surrogate.io.tables"):
        df = read_table(p)
    assert list(df.columns) == ["soleus_r", "gasmed_r"]
    for col in df.columns:
        np.testing.assert_array_equal(df[col].to_numpy(), _storage_column(p, col))
    h = df.attrs["opensim_header"]
    assert h.metadata["dropped_labels"] == "reserve_x\tcalcn_r_Fx"
    assert "dropping 2" in caplog.text


def test_real_static_optimization_force_file_layout(tmp_path: Path):
    """The layout AnalyzeTool/StaticOptimization writes (OpenSim 4.6, Rajagopal model with
    reserves and external loads): free-text header, labels == values; reads like OpenSim."""
    text = ("ModelForces\nversion=1\nnRows=2\nnColumns=5\ninDegrees=no\n\n"
            "This file contains the forces exerted on a model during a simulation.\n\n"
            "A force is a generalized force, meaning that it can be either a force (N) or a "
            "torque (Nm).\n\nUnits are S.I. units (second, meters, Newtons, ...)\n"
            "If the header above contains a line with 'inDegrees', this indicates whether "
            "rotational values are in degrees (yes) or radians (no).\n\nendheader\n"
            "time\tsoleus_r\treserve_pelvis_tx\tcalcn_r_grf2_Fx\tcalcn_r_grf2_Fy\n"
            "      0.30000000\t    512.12345678\t      0.00000000\t    -10.00000000\t   700.5\n"
            "      0.31000000\t    513.12345678\t      1.00000000\t    -11.00000000\t   701.5\n")
    p = _write(tmp_path, "so_StaticOptimization_force.sto", text)
    labels, time, values = _opensim_table(p)
    df = read_table(p)
    assert list(df.columns) == labels
    np.testing.assert_array_equal(df.to_numpy(), values)
    h = df.attrs["opensim_header"]
    assert h.name == "ModelForces" and len(h.comments) == 4 and "dropped_labels" not in h.metadata


def test_empty_table_and_nrows_warning(tmp_path: Path, caplog):
    p = _write(tmp_path, "empty.sto", HDR + "time\ta\tb\n")
    with caplog.at_level(logging.WARNING, logger="opensim_surrogate.io.tables"):
        df = read_table(p)
    assert df.shape == (0, 2) and list(df.columns) == ["a", "b"]
    assert "nRows=3" in caplog.text


def test_long_file_reads_fast(tmp_path: Path):
    import time as _time

    n, m = 25_000, 40
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((n, m)) * 100,
                      index=pd.Index(np.arange(n) / 1000.0, name="time"),
                      columns=[f"c{i}" for i in range(m)])
    p = write_table(df, tmp_path / "long.sto")
    t0 = _time.perf_counter()
    back = read_table(p)
    elapsed = _time.perf_counter() - t0
    np.testing.assert_array_equal(back.to_numpy(), df.to_numpy())
    assert elapsed < 3.0, f"reading 1M cells took {elapsed:.1f} s"


# --------------------------------------------------------------------------------------
# 4. degrees / radians
# --------------------------------------------------------------------------------------
ROTATIONAL = ["pelvis_tilt", "pelvis_list", "pelvis_rotation", "hip_flexion_r", "hip_adduction_r",
              "hip_rotation_r", "knee_angle_r", "ankle_angle_r", "not_in_table"]


def test_degrees_radians_conversion():
    path = DATA / "schreiber2019" / "2014001" / "ik" / "C4_05" / "C4_05_ik.mot"
    deg = read_table(path)
    assert deg.attrs["opensim_header"].in_degrees is True
    cols = rotational_columns(deg, ROTATIONAL)
    assert cols == ROTATIONAL[:-1]
    rad = to_radians(deg, ROTATIONAL)
    assert rad.attrs["opensim_header"].in_degrees is False
    assert deg.attrs["opensim_header"].in_degrees is True  # input untouched
    np.testing.assert_allclose(rad[cols].to_numpy(), np.deg2rad(deg[cols].to_numpy()), rtol=1e-15)
    others = [c for c in deg.columns if c not in cols]
    assert "pelvis_tx" in others and "knee_angle_l" in others
    np.testing.assert_array_equal(rad[others].to_numpy(), deg[others].to_numpy())
    with pytest.raises(TableFormatError, match="already in radians"):
        to_radians(rad, ROTATIONAL)
    with pytest.raises(TableFormatError, match="already in degrees"):
        to_degrees(deg, ROTATIONAL)
    again = to_degrees(rad, ROTATIONAL)
    assert again.attrs["opensim_header"].in_degrees is True
    np.testing.assert_allclose(again.to_numpy(), deg.to_numpy(), rtol=1e-12, atol=1e-12)


def test_conversion_matches_opensim_model(tmp_path: Path, rajagopal_model: Path):
    """Rotational coordinates from the .osim; OpenSim's own degree->radian conversion agrees."""
    path = DATA / "schreiber2019" / "2014001" / "ik" / "C4_05" / "C4_05_ik.mot"
    model = opensim.Model(str(rajagopal_model))
    coords = model.getCoordinateSet()
    rotational = [coords.get(i).getName() for i in range(coords.getSize())
                  if coords.get(i).getMotionType() == 1]  # 1 = Rotational
    assert "hip_flexion_r" in rotational and "pelvis_tx" not in rotational
    rad = to_radians(read_table(path), rotational)
    sto = opensim.Storage(str(path))
    model.initSystem()
    model.getSimbodyEngine().convertDegreesToRadians(sto)
    labels = sto.getColumnLabels()
    for i in range(1, labels.getSize()):
        label = labels.get(i)
        arr = opensim.ArrayDouble()
        sto.getDataColumn(label, arr)
        ref = np.array([arr.get(k) for k in range(arr.getSize())])
        np.testing.assert_allclose(rad[label].to_numpy(), ref, rtol=1e-12, atol=1e-12,
                                   err_msg=label)


def test_rotational_columns_speeds_and_paths(tmp_path: Path):
    df = pd.DataFrame(np.ones((2, 4)), index=pd.Index([0.0, 1.0], name="time"),
                      columns=["knee", "knee_u", "/jointset/j/hip/value", "pelvis_tx"])
    assert rotational_columns(df, ["knee", "hip"]) == ["knee", "knee_u", "/jointset/j/hip/value"]
    rad = to_radians(df, ["knee", "hip"])  # no header: converts and records the new unit
    np.testing.assert_allclose(rad.iloc[0].to_numpy(), [math.pi / 180] * 3 + [1.0])
    assert rad.attrs["opensim_header"].in_degrees is False
