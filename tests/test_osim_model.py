"""osim.xml (secure parser) and osim.model (read_model, detect_family) against OpenSim 4.6.

Every shared .osim is read with read_model and compared with what opensim.Model reports.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import pytest
from lxml import etree

from opensim_surrogate.errors import MissingFileError, ModelFileError
from opensim_surrogate.osim import ModelInfo, detect_family, parse_xml, read_model
from opensim_surrogate.osim.model import Body, Coordinate, Muscle
from opensim_surrogate.paths import data_root

ALL_MODELS = sorted(data_root().glob("**/*.osim"))
MODEL_IDS = [p.relative_to(data_root()).as_posix() for p in ALL_MODELS]
HAMNER = data_root() / "hamner2013" / "subject01" / "model" / "subject01_adjusted_scaled.osim"
UHLRICH = data_root() / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
MOTION = {1: "rotational", 2: "translational", 3: "coupled"}


def test_shared_models_found():
    # 1 generic Rajagopal model, 18 Schreiber subjects, 9 Hamner subjects
    assert len(ALL_MODELS) >= 28
    assert UHLRICH in ALL_MODELS and HAMNER in ALL_MODELS


@lru_cache(maxsize=None)
def opensim_facts(path: str) -> dict:
    """Everything the tests compare, from the OpenSim API (one load per model)."""
    import opensim

    opensim.Logger.setLevelString("error")
    m = opensim.Model(path)
    s = m.initSystem()
    bodies = [(b.getName(), b.getMass()) for b in m.getBodySet()]
    coords = []
    for c in m.getCoordinateSet():
        coords.append(dict(name=c.getName(), joint=c.getJoint().getName(),
                           motion_type=MOTION.get(int(c.getMotionType()), "?"),
                           default=c.getDefaultValue(), range=(c.getRangeMin(), c.getRangeMax()),
                           locked=bool(c.getDefaultLocked()), clamped=bool(c.getDefaultClamped())))
    couplings = {}
    for con in m.getConstraintSet():
        cc = opensim.CoordinateCouplerConstraint.safeDownCast(con)
        if cc is not None and cc.get_isEnforced():
            couplings[cc.getDependentCoordinateName()] = cc.getIndependentCoordinateNames().get(0)
    muscles = []
    for mu in m.getMuscles():
        muscles.append(dict(name=mu.getName(), type=mu.getConcreteClassName(),
                            fmax=mu.getMaxIsometricForce(), lopt=mu.getOptimalFiberLength(),
                            lts=mu.getTendonSlackLength(),
                            penn=mu.getPennationAngleAtOptimalFiberLength()))
    return dict(total_mass=m.getTotalMass(s), bodies=bodies, coords=coords, muscles=muscles,
                couplings=couplings, name=m.getName())


@lru_cache(maxsize=None)
def info_of(path: str) -> ModelInfo:
    return read_model(path)


# ----------------------------------------------------------------- read_model vs OpenSim
@pytest.mark.opensim
@pytest.mark.parametrize("path", ALL_MODELS, ids=MODEL_IDS)
def test_read_model_matches_opensim(path: Path):
    info = info_of(str(path))
    ref = opensim_facts(str(path))
    assert info.name == ref["name"]
    assert info.document_version >= 40000
    # bodies and mass
    assert [b.name for b in info.bodies] == [n for n, _ in ref["bodies"]]
    for b, (_, mass) in zip(info.bodies, ref["bodies"]):
        assert b.mass == pytest.approx(mass, abs=1e-12)
    assert abs(info.total_mass - ref["total_mass"]) <= 1e-6
    # coordinates: name, joint, motion type, default, range, locked, clamped, coupling
    assert [c.name for c in info.coordinates] == [c["name"] for c in ref["coords"]]
    for c, r in zip(info.coordinates, ref["coords"]):
        assert c.joint == r["joint"], c.name
        assert c.motion_type == r["motion_type"], c.name
        assert c.default_value == pytest.approx(r["default"], abs=1e-12), c.name
        assert c.range == pytest.approx(r["range"], abs=1e-12), c.name
        assert c.locked is r["locked"], c.name
        assert c.clamped is r["clamped"], c.name
        assert c.coupled_to == ref["couplings"].get(c.name), c.name
    # muscles
    assert info.muscle_names() == [m["name"] for m in ref["muscles"]]
    for m, r in zip(info.muscles, ref["muscles"]):
        assert m.type == r["type"]
        assert (m.max_isometric_force, m.optimal_fiber_length, m.tendon_slack_length,
                m.pennation_angle_at_optimal) == pytest.approx(
                    (r["fmax"], r["lopt"], r["lts"], r["penn"]), abs=1e-12), m.name
        assert m.side == ("r" if m.name.endswith("_r") else "l" if m.name.endswith("_l") else None)


def test_model_contents_by_family():
    uh = info_of(str(UHLRICH))
    assert uh.family == "rajagopal"
    assert len(uh.muscles) == 80 and {m.type for m in uh.muscles} == {"Millard2012EquilibriumMuscle"}
    assert uh.coordinate("knee_angle_r_beta").coupled_to == "knee_angle_r"
    assert uh.coordinate("knee_angle_r_beta").motion_type == "coupled"
    assert uh.coordinate("knee_angle_r").range == pytest.approx((0.0, 2.0944))
    assert "knee_angle_r" in uh.rotational_coordinates()
    assert "pelvis_tx" not in uh.rotational_coordinates()
    assert "knee_angle_r_beta" not in uh.rotational_coordinates()
    assert {"glmax1_r", "recfem_r", "glmax1_l"} <= set(uh.muscle_names())
    ha = info_of(str(HAMNER))
    assert ha.family == "gait2392"
    assert len(ha.muscles) == 92 and {m.type for m in ha.muscles} == {"Thelen2003Muscle"}
    assert ha.coordinate("knee_angle_r").range[0] < -2.0 < 0.2 < ha.coordinate("knee_angle_r").range[1] + 0.1
    assert ha.coordinate("subtalar_angle_r").locked
    assert {"glut_max1_r", "rect_fem_r"} <= set(ha.muscle_names())
    with pytest.raises(KeyError):
        ha.coordinate("knee_angle_r_beta")


@pytest.mark.parametrize("path", ALL_MODELS, ids=MODEL_IDS)
def test_family_of_every_shared_model(path: Path):
    info = info_of(str(path))
    rel = path.relative_to(data_root()).parts[0]
    expected = {"hamner2013": "gait2392", "schreiber2019": "rajagopal", "models": "rajagopal"}[rel]
    assert info.family == expected == detect_family(info)
    if rel == "hamner2013":
        assert len(info.muscles) == 92
        assert all(m.type == "Thelen2003Muscle" for m in info.muscles)
    if rel == "schreiber2019":
        assert info.muscles == []  # muscle-free IK models: family from knee_*_beta and range


def _fake(coords: list[Coordinate], muscles: list[str]) -> ModelInfo:
    return ModelInfo(path=Path("x.osim"), name="x", document_version=40000,
                     bodies=[Body("pelvis", 10.0)], total_mass=10.0, coordinates=coords,
                     muscles=[Muscle(n, "Thelen2003Muscle", 1.0, 0.1, 0.2, 0.0, n[-1]) for n in muscles])


def _knee(lo: float, hi: float) -> Coordinate:
    return Coordinate("knee_angle_r", "knee_r", "rotational", 0.0, (lo, hi), False, True)


def test_detect_family_rules():
    raj = ["glmax1_r", "recfem_r", "bflh_r", "vasint_r"]
    g = ["glut_max1_r", "rect_fem_r", "bifemlh_r", "vas_int_r"]
    assert detect_family(_fake([_knee(0, 2)], raj)) == "rajagopal"
    assert detect_family(_fake([_knee(-2.8, 0.17)], g)) == "gait2392"
    assert detect_family(_fake([_knee(-2.8, 0.17)], raj + g)) == "unknown"  # mixed muscles
    assert detect_family(_fake([_knee(0, 2)], g)) == "unknown"  # knee range contradicts
    assert detect_family(_fake([_knee(0, 2)], ["biceps_r", "triceps_r"])) == "unknown"
    assert detect_family(_fake([_knee(-2.8, 0.17)], [])) == "gait2392"  # muscle-free
    assert detect_family(_fake([_knee(0, 2)], [])) == "unknown"  # no *_beta: not Rajagopal
    beta = Coordinate("knee_angle_r_beta", "patellofemoral_r", "coupled", 0, (-1, 1), False, False,
                      "knee_angle_r")
    assert detect_family(_fake([_knee(0, 2), beta], [])) == "rajagopal"


# ----------------------------------------------------------------- motion-type rule
def _hamner_tree() -> etree._ElementTree:
    return copy.deepcopy(_hamner_tree_cached())


@lru_cache(maxsize=1)
def _hamner_tree_cached() -> etree._ElementTree:
    return etree.parse(str(HAMNER), etree.XMLParser(remove_comments=True, resolve_entities=False))


def _knee_axes(tree: etree._ElementTree) -> list[etree._Element]:
    return tree.xpath('//CustomJoint[@name="knee_r"]/SpatialTransform/TransformAxis')


def _set_function(axis: etree._Element, xml: str, coords: str | None = None) -> None:
    old = [c for c in axis if c.tag not in ("coordinates", "axis")][0]
    axis.replace(old, etree.fromstring(xml))
    if coords is not None:
        axis.find("coordinates").text = coords


def _lin(a: float, b: float = 0.0) -> str:
    return f'<LinearFunction name="function"><coefficients>{a} {b}</coefficients></LinearFunction>'


_SPLINE = '<SimmSpline name="function"><x>-2 0 2</x><y>-2 0 2.1</y></SimmSpline>'
_CONST = '<Constant name="function"><value>0</value></Constant>'
_MULT = ('<MultiplierFunction name="function"><function><LinearFunction name="f">'
         '<coefficients>1 0</coefficients></LinearFunction></function><scale>1</scale>'
         '</MultiplierFunction>')

# knee_r TransformAxes: 0 rotation1 = knee_angle_r (LinearFunction 1 0), 3/4 translations =
# MultiplierFunction(SimmSpline) of knee_angle_r.
MOTION_VARIANTS = {
    "slope_minus_1_is_rotational": lambda ax: _set_function(ax[0], _lin(-1)),
    "intercept_ignored": lambda ax: _set_function(ax[0], _lin(1, 0.1)),
    "slope_2_is_coupled": lambda ax: _set_function(ax[0], _lin(2)),
    "spline_is_coupled": lambda ax: _set_function(ax[0], _SPLINE),
    "multiplier_is_coupled": lambda ax: _set_function(ax[0], _MULT),
    "translation_spline_only_is_coupled": lambda ax: _set_function(ax[0], _CONST, ""),
    "unit_translation_wins": lambda ax: _set_function(ax[3], _lin(1)),
    "translation_slope_half_keeps_rotational": lambda ax: _set_function(ax[3], _lin(0.5)),
}


@pytest.mark.opensim
@pytest.mark.parametrize("variant", sorted(MOTION_VARIANTS))
def test_custom_joint_motion_type_rule_matches_opensim(variant, tmp_path):
    import opensim

    tree = _hamner_tree()
    MOTION_VARIANTS[variant](_knee_axes(tree))
    p = tmp_path / f"{variant}.osim"
    tree.write(str(p))
    opensim.Logger.setLevelString("error")
    m = opensim.Model(str(p))
    m.initSystem()
    expected = MOTION[int(m.getCoordinateSet().get("knee_angle_r").getMotionType())]
    assert read_model(p).coordinate("knee_angle_r").motion_type == expected
    assert expected == {"slope_minus_1_is_rotational": "rotational",
                        "intercept_ignored": "rotational",
                        "slope_2_is_coupled": "coupled", "spline_is_coupled": "coupled",
                        "multiplier_is_coupled": "coupled",
                        "translation_spline_only_is_coupled": "coupled",
                        "unit_translation_wins": "translational",
                        "translation_slope_half_keeps_rotational": "rotational"}[variant]


_FRESH_OPENSIM = """
import sys, json, opensim
opensim.Logger.setLevelString("error")
m = opensim.Model(sys.argv[1]); m.initSystem()
mu = m.getMuscles().get("glut_max1_r"); c = m.getCoordinateSet().get("hip_rotation_r")
print(json.dumps([mu.getMaxIsometricForce(), mu.getTendonSlackLength(),
                  mu.getPennationAngleAtOptimalFiberLength(), c.getRangeMin(), c.getRangeMax(),
                  bool(c.getDefaultClamped()), c.getDefaultValue()]))
"""


@pytest.mark.opensim
@pytest.mark.parametrize("file_defaults", [True, False], ids=["defaults_block", "builtin"])
def test_defaults_for_omitted_properties_match_opensim(tmp_path, file_defaults):
    """Omitted properties: the file's <defaults> object of that type, else OpenSim's own.

    OpenSim keeps type defaults in process-global state that loading a file with a
    <defaults> block overwrites (after any Hamner model, a bare Thelen2003Muscle has
    max_isometric_force 546), so the reference runs in a fresh interpreter.
    """
    import json
    import subprocess
    import sys

    tree = _hamner_tree()
    if not file_defaults:
        d = tree.find("Model/defaults")
        d.remove(d.find("Thelen2003Muscle"))
    mus = tree.xpath('//ForceSet//Thelen2003Muscle[@name="glut_max1_r"]')[0]
    for tag in ("max_isometric_force", "pennation_angle_at_optimal", "tendon_slack_length"):
        mus.remove(mus.find(tag))
    co = tree.xpath('//Coordinate[@name="hip_rotation_r"]')[0]
    for tag in ("range", "clamped", "default_value"):
        co.remove(co.find(tag))
    p = tmp_path / "defaults.osim"
    tree.write(str(p))
    info = read_model(p)
    ref = json.loads(subprocess.run([sys.executable, "-c", _FRESH_OPENSIM, str(p)], check=True,
                                    capture_output=True, text=True).stdout.strip().splitlines()[-1])
    mu = [x for x in info.muscles if x.name == "glut_max1_r"][0]
    got = (mu.max_isometric_force, mu.tendon_slack_length, mu.pennation_angle_at_optimal)
    assert list(got) == ref[:3]
    assert got == ((546.0, 0.078, 0.0) if file_defaults else (1000.0, 0.2, 0.0))
    c = info.coordinate("hip_rotation_r")
    assert [*c.range, c.clamped, c.default_value] == ref[3:] == [-10.0, 10.0, False, 0.0]


# ----------------------------------------------------------------- model file errors
def test_coordinate_used_by_no_axis_is_an_error(tmp_path):
    tree = _hamner_tree()
    for ax in _knee_axes(tree):
        _set_function(ax, _CONST, "")
    p = tmp_path / "orphan.osim"
    tree.write(str(p))
    with pytest.raises(ModelFileError) as exc:
        read_model(p)
    assert "knee_angle_r" in str(exc.value) and "orphan.osim" in str(exc.value)
    assert exc.value.line is not None


def test_setup_file_is_not_a_model(data_dir):
    grf = data_dir / "hamner2013" / "subject01" / "expData" / "Run_3_grf.xml"
    assert parse_xml(grf).getroot().tag == "OpenSimDocument"  # parse_xml reads setups too
    with pytest.raises(ModelFileError) as exc:
        read_model(grf)
    assert "Run_3_grf.xml" in str(exc.value) and "Model" in str(exc.value)


def test_opensim3_model_is_refused_with_a_hint(tmp_path):
    p = tmp_path / "old.osim"
    p.write_text('<?xml version="1.0"?>\n<OpenSimDocument Version="30000">\n<Model name="m">'
                 '<BodySet><objects><Body name="pelvis"><mass>1</mass><Joint/></Body></objects>'
                 '</BodySet></Model></OpenSimDocument>\n')
    with pytest.raises(ModelFileError) as exc:
        read_model(p)
    assert "3.x" in str(exc.value) and "printToXML" in str(exc.value)


def test_body_without_mass_and_bad_number_are_errors(tmp_path):
    tree = _hamner_tree()
    body = tree.xpath('//Body[@name="tibia_r"]')[0]
    body.remove(body.find("mass"))
    p = tmp_path / "nomass.osim"
    tree.write(str(p))
    with pytest.raises(ModelFileError, match="tibia_r.*mass"):
        read_model(p)
    tree = _hamner_tree()
    tree.xpath('//Coordinate[@name="knee_angle_r"]/range')[0].text = "-2.8 abc"
    tree.write(str(p))
    with pytest.raises(ModelFileError) as exc:
        read_model(p)
    assert "knee_angle_r" in str(exc.value) and exc.value.line is not None


# ----------------------------------------------------------------- secure parser
def test_non_xml_file_names_line_and_column(tmp_path):
    p = tmp_path / "trial.osim"
    p.write_text("time,knee\n0,1\n")
    with pytest.raises(ModelFileError) as exc:
        parse_xml(p)
    assert exc.value.line == 1 and exc.value.column == 1
    assert "trial.osim:1" in str(exc.value) and "column 1" in str(exc.value)


def test_malformed_xml_reports_the_right_line(tmp_path):
    p = tmp_path / "broken.osim"
    p.write_text('<?xml version="1.0"?>\n<OpenSimDocument>\n  <Model>\n    <BodySet>\n'
                 '  </Model>\n</OpenSimDocument>\n')
    with pytest.raises(ModelFileError) as exc:
        read_model(p)
    assert exc.value.line == 5 and isinstance(exc.value.column, int)
    assert "broken.osim:5" in str(exc.value)


def test_xxe_external_entity_is_refused(tmp_path):
    p = tmp_path / "xxe.osim"
    p.write_text('<?xml version="1.0"?>\n<!DOCTYPE m [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
                 '<OpenSimDocument Version="40000"><Model name="m">&xxe;</Model></OpenSimDocument>\n')
    with pytest.raises(ModelFileError) as exc:
        parse_xml(p)
    assert "entity declarations are not allowed" in str(exc.value)
    assert "root:" not in str(exc.value)  # nothing of /etc/passwd leaks into the message


def test_parameter_entity_is_refused(tmp_path):
    p = tmp_path / "pe.xml"
    p.write_text('<?xml version="1.0"?>\n<!DOCTYPE m [ <!ENTITY % e SYSTEM "http://x.invalid/e.dtd"> %e; ]>\n'
                 '<OpenSimDocument Version="40000"/>\n')
    with pytest.raises(ModelFileError, match="entity declarations are not allowed"):
        parse_xml(p)


def test_billion_laughs_is_refused(tmp_path):
    ents = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10)]
    p = tmp_path / "lol.osim"
    p.write_text('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + "\n".join(ents) + "\n]>\n"
                 "<OpenSimDocument><Model name=\"&lol9;\">&lol9;</Model></OpenSimDocument>\n")
    with pytest.raises(ModelFileError, match="entity declarations are not allowed"):
        read_model(p)


def test_doctype_without_entities_is_fine(tmp_path):
    p = tmp_path / "dt.xml"
    p.write_text('<?xml version="1.0"?>\n<!DOCTYPE OpenSimDocument>\n'
                 '<OpenSimDocument Version="40000"><x>1</x></OpenSimDocument>\n')
    assert parse_xml(p).getroot().findtext("x") == "1"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(MissingFileError) as exc:
        read_model(tmp_path / "nope.osim")
    assert "nope.osim" in str(exc.value) and isinstance(exc.value, FileNotFoundError)
    with pytest.raises(ModelFileError, match="directory"):
        parse_xml(tmp_path)


def test_parser_is_configured_securely():
    from opensim_surrogate.osim.xml import secure_parser

    # lxml exposes no getters; check behaviour instead: an undeclared external DTD is not
    # fetched/loaded, so an entity it would define stays unresolved (a syntax error).
    doc = b'<?xml version="1.0"?>\n<!DOCTYPE a SYSTEM "/etc/passwd">\n<a>x</a>'
    tree = etree.fromstring(doc, secure_parser()).getroottree()
    assert tree.docinfo.system_url == "/etc/passwd" and tree.docinfo.externalDTD is None
