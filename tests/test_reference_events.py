"""Gait events, cycles and ID-label validity on real shared trials (schreiber2019, hamner2013)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opensim_surrogate.errors import InputError
from opensim_surrogate.reference import events as E
from opensim_surrogate.reference.config import ReferenceConfig
from opensim_surrogate.reference.tools import read_sto, write_external_loads

SCHREIBER_TRIALS = [("2014001", "C4_05"), ("2014007", "C5_04"), ("2014019", "C4_05"),
                    ("2015032", "C4_03"), ("2015043", "C5_05"), ("2014025", "C5_02")]
CFG = ReferenceConfig()


def _schreiber(data_dir: Path, subject: str, trial: str) -> tuple[Path, Path, Path]:
    d = data_dir / "schreiber2019" / subject / "dynamic"
    return (d / f"{subject}_{trial}.trc", d / f"{subject}_{trial}_grf.mot",
            d / f"{subject}_{trial}_grf.xml")


@pytest.fixture(scope="module")
def schreiber_events(data_dir: Path) -> dict:
    out = {}
    for subject, trial in SCHREIBER_TRIALS:
        trc, grf, xml = _schreiber(data_dir, subject, trial)
        plates = E.events_from_grf(read_sto(grf), xml, CFG.threshold_n, CFG.min_contact_s)
        foot = E.foot_positions_from_trc(trc)
        kin = E.events_from_kinematics(foot, CFG.kinematic_min_separation_s,
                                       CFG.kinematic_prominence_m, CFG.kinematic_hs_offset_s)
        out[(subject, trial)] = (plates, kin, foot.index.to_numpy())
    return out


def test_schreiber_one_plate_contact_per_foot_of_stance_length(schreiber_events: dict) -> None:
    for key, (plates, _, _) in schreiber_events.items():
        for leg in E.LEGS:
            assert len(plates.contacts[leg]) == 1, (key, leg, plates.contacts)
            a, b = plates.contacts[leg][0]
            assert 0.45 <= b - a <= 0.9, (key, leg, b - a)
        # the two plate stances overlap (double support) and one starts near the trial start
        (ra, rb), (la, lb) = plates.contacts["r"][0], plates.contacts["l"][0]
        assert min(ra, la) < 0.1 and 0.05 < min(rb, lb) - max(ra, la) < 0.25, key


def test_kinematic_events_match_force_plates(schreiber_events: dict) -> None:
    hs_err, to_err = [], []
    for key, (plates, kin, _) in schreiber_events.items():
        for leg in E.LEGS:
            for x in plates.heel_strike[leg]:
                near = [y for y in kin.heel_strike[leg] if abs(y - x) < 0.15]
                if x > 0.2:  # heel strikes within 0.2 s of the start have no kinematic peak
                    assert near, (key, leg, x, kin.heel_strike)
                hs_err += [y - x for y in near]
            for x in plates.toe_off[leg]:
                near = [y for y in kin.toe_off[leg] if abs(y - x) < 0.15]
                assert near, (key, leg, x, kin.toe_off)
                to_err += [y - x for y in near]
    hs_err, to_err = np.array(hs_err), np.array(to_err)
    assert len(hs_err) >= len(SCHREIBER_TRIALS) and len(to_err) >= 2 * len(SCHREIBER_TRIALS)
    # Zeni heel strikes (after the calibrated +40 ms) and toe-offs within 40 ms
    assert np.abs(hs_err).max() < 0.04, hs_err
    assert abs(hs_err.mean()) < 0.015, hs_err
    assert np.abs(to_err).max() < 0.04, to_err


def test_schreiber_validity_window(schreiber_events: dict) -> None:
    for key, (plates, kin, t) in schreiber_events.items():
        valid = E.label_validity(t, plates, kin, CFG.validity_margin_s, CFG.edge_margin_s,
                                 CFG.measured_overlap_s)
        runs = E._runs(valid)
        assert len(runs) == 1, (key, runs)
        lo, hi = t[runs[0][0]], t[runs[0][1]]
        # starts after the first (off-plate) toe-off, ends before the next off-plate heel strike
        first_to = min(min(kin.toe_off[leg]) for leg in E.LEGS)
        assert lo >= first_to + CFG.validity_margin_s - 1e-6, key
        assert 0.6 <= hi - lo <= 1.2, (key, lo, hi)
        assert 0.4 <= valid.mean() <= 0.7, (key, valid.mean())
        # every valid frame: each foot on its plate or in swing (kinematic contact measured)
        for leg in E.LEGS:
            for a, b in kin.contacts[leg]:
                on_plate = any(E._overlap((a, b), m) > 0 for m in plates.contacts[leg])
                if not on_plate:
                    assert not valid[(t >= a) & (t <= b)].any(), (key, leg, a, b)


def test_grf_sides_follow_external_loads(data_dir: Path, tmp_path: Path) -> None:
    _, grf, xml = _schreiber(data_dir, "2014001", "C4_05")
    swapped = write_external_loads(xml, grf, tmp_path / "swapped.xml", swap_sides=True)
    a = E.events_from_grf(grf, xml)
    b = E.events_from_grf(grf, swapped)
    assert a.contacts["r"] == b.contacts["l"] and a.contacts["l"] == b.contacts["r"]
    assert a.contacts["r"] != a.contacts["l"]


@pytest.mark.parametrize("subject", ["subject01", "subject10"])
def test_hamner_gait_times_are_right_heel_strikes(data_dir: Path, subject: str) -> None:
    d = data_dir / "hamner2013" / subject / "expData"
    times = json.loads((d / "gaitTimes.json").read_text())
    for speed in (2, 3, 4, 5):
        grf = read_sto(d / f"Run_{speed}_grf.mot")
        ev = E.events_from_grf(grf, d / f"Run_{speed}_grf.xml", CFG.threshold_n,
                               CFG.min_contact_s)
        bounds = sorted({c[k] for c in times[f"run{speed}"].values()
                         for k in ("initialTime", "finalTime")})
        for x in bounds:
            dr = min(abs(np.array(ev.heel_strike["r"]) - x))
            dl = min(abs(np.array(ev.heel_strike["l"]) - x))
            assert dr < 0.015, (subject, speed, x, ev.heel_strike["r"])
            assert dl > 0.1  # not the left foot
        cycles = E.gait_cycles(ev, "r")
        for c in times[f"run{speed}"].values():
            assert any(abs(a - c["initialTime"]) < 0.015 and abs(b - c["finalTime"]) < 0.015
                       for a, b in cycles), (subject, speed, c)
        # treadmill: one belt per foot, every kinematic stance is measured
        t = np.asarray(grf.index[::10], float)
        valid = E.label_validity(t, ev, ev, edge_margin_s=0.05)
        assert valid[(t > t[0] + 0.06) & (t < t[-1] - 0.06)].all()


def test_gait_cycles_and_contacts_synthetic() -> None:
    ev = {"heel_strike_r": [0.1, 1.2, 2.3, 5.9], "heel_strike_l": [0.65]}
    assert E.gait_cycles(ev, "r") == [(0.1, 1.2), (1.2, 2.3)]  # 2.3 -> 5.9 too long
    assert E.gait_cycles(ev, "l") == []
    with pytest.raises(InputError):
        E.gait_cycles(ev, "x")
    # a foot whose first event is a toe-off is in stance from the start
    assert E._contacts_from_events([0.8], [0.2, 1.4], 0.0, 2.0) == [(0.0, 0.2), (0.8, 1.4)]
    # last heel strike without toe-off: stance to the end; no event: unknown = contact
    assert E._contacts_from_events([0.5], [], 0.0, 1.0) == [(0.5, 1.0)]
    assert E._contacts_from_events([], [], 0.0, 1.0) == [(0.0, 1.0)]


def test_unmeasured_contact_invalidates_with_margin() -> None:
    t = np.round(np.arange(0, 2.0001, 0.01), 6)
    plates = E.GaitEvents({"r": [0.1], "l": []}, {"r": [0.7], "l": []},
                          {"r": [(0.1, 0.7)], "l": []}, 0.0, 2.0, "grf")
    kin = E.GaitEvents({"r": [0.1], "l": [0.6]}, {"r": [0.7], "l": [1.2]},
                       {"r": [(0.1, 0.7)], "l": [(0.6, 1.2)]}, 0.0, 2.0, "kinematics")
    v = E.label_validity(t, plates, kin, margin_s=0.03, edge_margin_s=0.05)
    assert v[(t >= 0.05) & (t <= 0.56)].all()
    assert not v[(t >= 0.58) & (t <= 1.22)].any()
    assert v[(t >= 1.24) & (t <= 1.95)].all()
    assert not v[t < 0.05].any() and not v[t > 1.95].any()
