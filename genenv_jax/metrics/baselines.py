"""Simple likelihood baselines that prove a model learned something."""

from __future__ import annotations

import math

import numpy as np

from genenv_jax.layout import to_8bit


def independent_pixel_bpd(train_source, test_source, layout, batch: int = 512) -> float:
  """Bits/dim of an independent categorical per pixel and channel, fitted on the train split.

  Counts use add-one smoothing. Dimensions are counted as in the likelihood
  families: each 8-bit channel value is one, a pixel's label is one; 16-bit
  heights are binned to 8 bits, the resolution bits/dim is counted at.
  """
  fields = [(kind.key, kind.levels(layout.num_label_classes)) for kind in layout.kinds()]
  counts = {}
  for lo in range(0, len(train_source), batch):
    raw = train_source.get(list(range(lo, min(lo + batch, len(train_source)))))
    for key, k in fields:
      a = to_8bit(raw[key]).reshape(len(raw[key]), -1).astype(np.int64)  # [n, dims]
      c = counts.setdefault(key, np.ones((a.shape[1], k), np.float64))
      np.add.at(c, (np.arange(a.shape[1])[None, :].repeat(len(a), 0), a), 1.0)
  logp = {key: np.log(c / c.sum(1, keepdims=True)) for key, c in counts.items()}
  total, dims = 0.0, 0
  for lo in range(0, len(test_source), batch):
    raw = test_source.get(list(range(lo, min(lo + batch, len(test_source)))))
    for key, _ in fields:
      a = to_8bit(raw[key]).reshape(len(raw[key]), -1).astype(np.int64)
      total += -logp[key][np.arange(a.shape[1])[None, :], a].sum()
      dims += a.size
  return total / dims / math.log(2.0)
