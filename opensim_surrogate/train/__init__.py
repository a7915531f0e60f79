"""Training of the surrogate networks: features, protocol, metrics, baselines, comparison.

Modules: :mod:`.features` (inputs/outputs/normalisation, shared with the runtime),
:mod:`.protocol` (split, GroupKFold, early stopping, final retraining), :mod:`.metrics`
(RMSE, MAE, two R² definitions), :mod:`.baselines` (gait-cycle template, ridge),
:mod:`.compare` (the Gait2Hip-60 comparison table).
"""
from __future__ import annotations

__all__ = ["features", "protocol", "metrics", "baselines", "compare"]
