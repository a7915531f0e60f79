"""Datasets of OpenSim reference results (schema, storage, transformations)."""
from .store import SCHEMA_VERSION, Dataset, TrialRecord, read_trial, write_trial

__all__ = ["SCHEMA_VERSION", "Dataset", "TrialRecord", "read_trial", "write_trial"]
