"""The periodic column pattern of upsampling generators, measured.

Three 2x pixel-shuffle upsamplings give every output pixel one of 8 phases
(x mod 8) per axis; when the sub-pixel kernels differ, the change from one
column to the next depends on the phase, which reads as a faint 8-px stripe.
The statistic: the mean absolute RGB change between column x and x+1,
grouped by x mod period; ``spread`` is (max - min) / mean over the phases
(0 for a stationary image; real scenes sit near it).
"""

from __future__ import annotations

import numpy as np


def column_change_by_phase(rgb: np.ndarray, period: int = 8) -> np.ndarray:
  """[..., h, w, c] image(s) -> [period] mean |x[:, i+1] - x[:, i]| grouped by i mod period."""
  a = np.asarray(rgb, np.float64)
  d = np.abs(np.diff(a, axis=-2)).mean(axis=-1)  # [..., h, w-1]
  d = d.reshape(-1, d.shape[-1]).mean(axis=0)
  phases = np.arange(d.shape[0]) % period
  return np.array([d[phases == p].mean() for p in range(period)])


def spread(profile: np.ndarray) -> float:
  """(max - min) / mean of a phase profile."""
  return float((profile.max() - profile.min()) / profile.mean())
