"""Settings of the reference pipeline (one JSON-serialisable dataclass).

The values here define what the training labels *are*; a dataset records the exact
:class:`ReferenceConfig` it was built with (``ReferenceConfig.to_dict()`` in ``dataset.json``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InputError

__all__ = ["ReferenceConfig"]


@dataclass
class ReferenceConfig:
    """Settings of the OpenSim reference pipeline (scale -> IK -> ID -> events -> SO).

    Attributes
    ----------
    sample_rate_hz : float
        Rate of the processed coordinates and of every stored per-frame table (100 Hz). IK
        output is low-pass filtered once, then resampled to this rate on a grid starting at
        the first IK frame; ID and SO run on exactly these rows.
    lowpass_hz : float
        Cut-off of the single low-pass filter applied to the IK coordinates before any tool
        (OpenSim ``TabOpLowPassFilter``, i.e. the IIR filter of ``Storage`` with padding).
        The tools' own filters are switched off (``-1``) so nothing is filtered twice.
    grf_lowpass_hz : float or None
        Cut-off of a zero-lag 4th-order Butterworth applied to the ground-reaction *force and
        free-moment* columns before ID/SO (``None``: GRF used as given). Default 6 Hz, the same
        as the coordinates: filtering kinematics and forces at the same cut-off avoids the
        impact artefacts in joint moments that mismatched filters create (Kristianslund et al.
        2012, J Biomech 45:666; Bisseling & Hof 2006). After filtering, samples where the raw
        vertical force is below ``threshold_n`` are set back to zero, so the filter does not
        smear load into swing; centre-of-pressure columns are never filtered (they are only
        defined during contact).
    activation_exponent : float
        Exponent of the static-optimisation cost ``sum(a_i ** p)`` (2).
    use_muscle_physiology : bool
        Static optimisation respects force-length-velocity (True).
    residual_optimal_force : float
        Optimal force of the six pelvis residual ``CoordinateActuator`` s (N or N·m per unit
        control; controls unbounded). Muscles do not act on the pelvis (ground) coordinates, so
        the residuals' value does not change the muscle solution; 1000 keeps their controls
        near unit size, which the optimiser likes. Their outputs equal the ID pelvis forces.
    reserve_optimal_force : float
        Optimal force (N·m per unit control, controls unbounded) of the reserve
        ``CoordinateActuator`` s added on every other unlocked, independent coordinate that the
        model does not already actuate with a ``CoordinateActuator`` (e.g. hips, knees,
        ankles; the Rajagopal upper body already carries 10 N·m actuators). 1 N·m: with the
        quadratic cost a reserve torque T costs T², so the optimiser only uses reserves where
        muscles cannot produce the moment; their magnitudes are reported per trial.
    add_reserves : bool
        Add the reserves (True). False is only useful to expose a too-weak model.
    threshold_n : float
        Vertical ground-reaction threshold (N) for force-plate contact (events, validity).
    min_contact_s : float
        Shortest force-plate contact (s) counted as a stance; shorter blips are ignored.
    kinematic_min_separation_s : float
        Shortest time (s) between two kinematic heel strikes (or toe-offs) of one foot.
    kinematic_prominence_m : float
        Minimum prominence (m) of a heel/toe anteroposterior extremum (Zeni et al. 2008).
    kinematic_hs_offset_s : float
        Added to kinematic (Zeni) heel strikes, which precede force-plate heel strikes by
        43 +- 11 ms on schreiber2019 (measured on 36 plate heel strikes; 0.04 s).
    validity_margin_s : float
        Safety margin (s) by which every *unmeasured* ground contact (a kinematic stance with
        no force-plate contact under it) is widened before frames are declared invalid.
    edge_margin_s : float
        Frames this close (s) to the first/last frame are never labelled valid (filter edge
        effects, events that cannot be detected at the edges).
    measured_overlap_s : float
        A kinematic stance overlapping a force-plate contact of the same foot (widened by
        ``measured_tolerance_s``) by at least this long (s) counts as measured.
    measured_tolerance_s : float
        Widening (s) of force-plate contacts when matching them with kinematic stances:
        absorbs the kinematic detector's timing error (Zeni toe-offs are ~90 ms late in
        running). Consecutive stances of one foot are >= 0.3 s apart, so this cannot merge
        an off-plate stance with a plate stance.
    so_window : str
        ``"labelled"``: run SO only on the frames with valid ID labels (plus ``so_margin_s``),
        ``"all"``: on every frame, ``"none"``: skip SO. SO costs ~0.18 s per frame.
    so_margin_s : float
        Frames added before/after each valid window for SO (warm-up of the optimiser's warm
        start; these frames are solved but not labelled valid).
    so_max_frames : int or None
        Cap on the number of SO frames (the middle of the first labelled window); for smoke
        tests only. None: no cap.
    so_max_constraint_violation : float
        An SO frame whose reported constraint violation exceeds this is marked failed (the
        solver reports ~1e-12 when it converges).
    so_max_reserve : float or None
        If set, an SO frame where any reserve actuator's output exceeds this (N·m or N) is
        marked failed (labels masked). None: keep such frames; reserve magnitudes are
        reported per trial and per frame regardless.
    capture_console : bool
        Redirect OpenSim's console output (file descriptors 1/2) to ``<step>.console.log`` in
        the trial work directory while a tool runs; keeps build logs readable.
    """

    sample_rate_hz: float = 100.0
    lowpass_hz: float = 6.0
    grf_lowpass_hz: float | None = 6.0
    activation_exponent: float = 2.0
    use_muscle_physiology: bool = True
    residual_optimal_force: float = 1000.0
    reserve_optimal_force: float = 1.0
    add_reserves: bool = True
    threshold_n: float = 20.0
    min_contact_s: float = 0.1
    kinematic_min_separation_s: float = 0.3
    kinematic_prominence_m: float = 0.05
    kinematic_hs_offset_s: float = 0.04
    validity_margin_s: float = 0.03
    edge_margin_s: float = 0.05
    measured_overlap_s: float = 0.05
    measured_tolerance_s: float = 0.1
    so_window: str = "labelled"
    so_margin_s: float = 0.02
    so_max_frames: int | None = None
    so_max_constraint_violation: float = 1e-3
    so_max_reserve: float | None = None
    capture_console: bool = True

    def __post_init__(self) -> None:
        if self.so_window not in ("labelled", "all", "none"):
            raise InputError(f"so_window must be 'labelled', 'all' or 'none', not "
                             f"{self.so_window!r}", column="so_window")
        for name in ("sample_rate_hz", "lowpass_hz", "activation_exponent",
                     "residual_optimal_force", "reserve_optimal_force", "threshold_n"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive number, not {v!r}", column=name)
        if self.lowpass_hz >= self.sample_rate_hz / 2:
            raise InputError("lowpass_hz must be below the Nyquist frequency of "
                             "sample_rate_hz", column="lowpass_hz")
        if self.grf_lowpass_hz is not None and not self.grf_lowpass_hz > 0:
            raise InputError("grf_lowpass_hz must be positive or None", column="grf_lowpass_hz")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every setting."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReferenceConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InputError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown reference setting(s): {', '.join(unknown)}",
                             column=unknown[0], hint=f"known: {', '.join(sorted(known))}")
        return cls(**data)
