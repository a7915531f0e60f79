"""Packaging for opensim-surrogate (neural stand-ins for OpenSim ID and SO)."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version: dict[str, str] = {}
exec((ROOT / "opensim_surrogate" / "_version.py").read_text(), version)

setup(
    name="opensim-surrogate",
    version=version["__version__"],
    description="Millisecond surrogates of OpenSim inverse dynamics and static optimization",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["opensim_surrogate", "opensim_surrogate.*"]),
    include_package_data=True,
    install_requires=[
        "opensim==4.6",
        "torch==2.13.0",
        "numpy>=2.1",
        "pandas>=2.2",
        "scipy>=1.13",
        "lxml>=5",
        "pyarrow>=15",
        "safetensors>=0.4",
        "matplotlib>=3.8",
        "tqdm>=4.66",
    ],
    extras_require={
        "cluster": ["dask[distributed]>=2024.1"],
        "test": ["pytest>=8", "pytest-benchmark>=4", "hypothesis>=6"],
    },
    entry_points={"console_scripts": ["opensim-surrogate=opensim_surrogate.cli:main"]},
)
