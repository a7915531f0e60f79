"""OpenSim model files: secure XML parsing, model introspection, sign conventions.

>>> from opensim_surrogate.osim import read_model, conventions_for     # doctest: +SKIP
>>> info = read_model("subject01_adjusted_scaled.osim")                # doctest: +SKIP
>>> info.family, info.total_mass, len(info.muscles)                    # doctest: +SKIP
('gait2392', 72.84, 92)
>>> conv = conventions_for(info); conv.sign("knee_angle_r")            # doctest: +SKIP
-1
"""
from .conventions import (
    CANONICAL,
    LOWER_LIMB_COORDINATES,
    SUPPORTED_FAMILIES,
    CoordinateConvention,
    ModelConventions,
    conventions_for,
    supported_families_markdown,
)
from .model import Body, Coordinate, Joint, ModelInfo, Muscle, detect_family, read_model
from .xml import parse_xml

__all__ = [
    "parse_xml",
    "read_model", "detect_family", "ModelInfo", "Body", "Coordinate", "Muscle", "Joint",
    "conventions_for", "ModelConventions", "CoordinateConvention", "SUPPORTED_FAMILIES",
    "LOWER_LIMB_COORDINATES", "CANONICAL", "supported_families_markdown",
]
