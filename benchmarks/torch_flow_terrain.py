r"""PyTorch replica of the ``configs/flow_terrain.py:cpu`` train step (Glow), for a side-by-side speed comparison.

Benchmark-only (``pip install torch`` into a separate environment; never a
requirement of the library or the tests). Same flow, loss, optimiser and EMA
as ``genenv_jax/families/flow.py`` with that config; the parameter count is
printed and equals the project's (551,664):

* 3 levels of [squeeze (JAX's (row, col, channel) order), 6 steps of
  (actnorm, invertible 1x1 convolution in LU form with a fixed channel
  reversal, affine coupling: 3x3 conv -> ReLU -> 1x1 conv -> ReLU -> 3x3 conv
  to shift and raw scale interleaved, scale = sigmoid(raw + 2)), split with a
  learned conditional Gaussian (3x3 conv) for the split half]; 4 channels
  (RGB, height) uniformly dequantised; loss in bits/dim.
* Global-norm clip 50, Adam(0.9, 0.999), linear warm-up over 100 steps, EMA
  of all parameters with decay min(0.99, (1 + s) / (10 + s)).

Actnorm starts at (0, 1) here instead of the project's data-dependent
initialisation: what is timed is the step, not the start.

  python benchmarks/torch_flow_terrain.py --mode=eager|cl|compile [--steps=40] [--threads=2]

Prints ``RESULT {json}`` with ``steps_per_s`` (what ``benchmarks/vs_pytorch.py`` reads).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_common

BATCH, IMAGE, CHANNELS, LEVELS, STEPS, HIDDEN = 32, 32, 4, 3, 6, 48
LR, B1, B2, CLIP, WARM, EMA = 1e-3, 0.9, 0.999, 50.0, 100, 0.99
NUM_DIMS = IMAGE * IMAGE * CHANNELS
LOG2PI = math.log(2 * math.pi)


def conv(cin, cout, k, zero=False):
  c = nn.Conv2d(cin, cout, k, padding=k // 2)
  with torch.no_grad():
    if zero:
      c.weight.zero_()
    else:
      std = math.sqrt(1.0 / (cin * k * k)) / 0.87962566103423978  # flax's lecun_normal (truncated)
      nn.init.trunc_normal_(c.weight, 0.0, std, -2 * std, 2 * std)
    c.bias.zero_()
  return c


def squeeze(x):
  """[b, c, h, w] -> [b, 4c, h/2, w/2] with the project's (row, col, channel) channel order."""
  b, c, h, w = x.shape
  y = x.permute(0, 2, 3, 1).reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5)
  return y.reshape(b, h // 2, w // 2, 4 * c).permute(0, 3, 1, 2)


def gaussian_logpdf(z, mean, logstd):
  return (-0.5 * (LOG2PI + 2 * logstd + ((z - mean) * torch.exp(-logstd)) ** 2)).sum(dim=(1, 2, 3))


class FlowStep(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.an_bias, self.an_logs = nn.Parameter(torch.zeros(c)), nn.Parameter(torch.zeros(c))
    self.lower, self.upper = nn.Parameter(torch.zeros(c, c)), nn.Parameter(torch.zeros(c, c))
    self.w_logs = nn.Parameter(torch.zeros(c))
    self.register_buffer("perm", torch.eye(c).flip(0))
    ca = c // 2
    self.c1, self.c2, self.c3 = conv(ca, HIDDEN, 3), conv(HIDDEN, HIDDEN, 1), conv(HIDDEN, 2 * (c - ca), 3, zero=True)

  def forward(self, x):
    hw = x.shape[2] * x.shape[3]
    x = (x + self.an_bias[None, :, None, None]) * torch.exp(self.an_logs)[None, :, None, None]
    ld = hw * self.an_logs.sum()
    c = x.shape[1]
    eye = torch.eye(c, device=x.device)
    upper = torch.triu(self.upper, 1) + torch.diag(torch.exp(self.w_logs))
    w = self.perm @ (torch.tril(self.lower, -1) + eye) @ upper
    x = F.conv2d(x, w[:, :, None, None])
    ld = ld + hw * self.w_logs.sum()
    ca = c // 2
    xa, xb = x[:, :ca], x[:, ca:]
    h = self.c3(F.relu(self.c2(F.relu(self.c1(xa)))))
    shift, raw = h[:, 0::2], h[:, 1::2]
    scale = torch.sigmoid(raw + 2.0)
    return torch.cat([xa, (xb + shift) * scale], 1), ld + torch.log(scale).sum(dim=(1, 2, 3))


class Glow(nn.Module):
  def __init__(self):
    super().__init__()
    self.levels = nn.ModuleList(
      [nn.ModuleList([FlowStep(CHANNELS * 4 * 2**lv) for _ in range(STEPS)]) for lv in range(LEVELS)]
    )
    kept = [CHANNELS * 2 ** (lv + 1) for lv in range(LEVELS - 1)]
    self.priors = nn.ModuleList([conv(c, 2 * c, 3, zero=True) for c in kept])

  def log_prob(self, x):
    ld = torch.zeros(x.shape[0])
    lp = torch.zeros(x.shape[0])
    h = x
    for lv, steps in enumerate(self.levels):
      h = squeeze(h)
      for s in steps:
        h, d = s(h)
        ld = ld + d
      if lv < LEVELS - 1:
        c = h.shape[1] // 2
        h, z = h[:, :c], h[:, c:]
        out = self.priors[lv](h)
        mean, logstd = out[:, 0::2], out[:, 1::2]
        lp = lp + gaussian_logpdf((z - mean) * torch.exp(-logstd), 0.0, torch.zeros(()))
        ld = ld - logstd.sum(dim=(1, 2, 3))
    return gaussian_logpdf(h, 0.0, torch.zeros(())) + lp + ld


class Trainer(torch_common.Trainer):
  def __init__(self, mode, seed=0):
    torch.manual_seed(seed)
    self.mf = torch.channels_last if mode in ("cl", "compile_cl") else torch.contiguous_format
    self.model = Glow().to(memory_format=self.mf)
    self.params = list(self.model.parameters())
    self.setup_optimiser(mode, LR, B1, B2, CLIP, WARM, EMA)

  def _loss(self, x):
    v = torch.round((x + 1.0) * 127.5)
    y = ((v + torch.rand_like(v)) / 256.0 - 0.5).contiguous(memory_format=self.mf)
    logp = self.model.log_prob(y)
    return ((-logp + NUM_DIMS * math.log(256.0)) / (NUM_DIMS * math.log(2.0))).mean()


def batches(mf):
  """8-bit RGB and height values mapped to [-1, 1]."""
  return [(torch.randint(0, 256, (BATCH, CHANNELS, IMAGE, IMAGE)).float() / 127.5 - 1.0) for _ in range(4)]


if __name__ == "__main__":
  torch_common.main(Trainer, batches, BATCH)
