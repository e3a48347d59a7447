r"""PyTorch replica of the ``configs/vae_terrain.py:cpu`` train step, for a side-by-side speed comparison.

Benchmark-only (``pip install torch`` into a separate environment; never a
requirement of the library or the tests). Same network, loss, optimiser and
EMA as ``genenv_jax/families/vae.py`` with that config (parameter counts are
printed and equal the project's: 1,402,526 = encoder 602,256 + decoder 800,270):

* Encoder: 3x3 conv 10->16, then [ConvBlock(w), 2x2 average pool] for w in
  32, 64, 128, ConvBlock(128), 1x1 conv to 2 x 16 (mean, log-variance).
* Decoder: 3x3 conv 16->128, ConvBlock(128), then [Upsample(w) (3x3 conv to
  4w, depth-to-space in JAX's (row, col, channel) order), leaky ReLU,
  ConvBlock(w)] for w in 64, 32, 16, 3x3 conv to 14 (logistic mean and
  log-scale of 4 eight-bit channels, 6 biome logits).
* Loss: discretised-logistic log-likelihood of RGB and height, categorical
  of the biome map, KL to N(0, I), beta 1, in bits/dim; global-norm clip 100,
  Adam(0.9, 0.999), linear warm-up over 100 steps, EMA of all parameters
  with decay min(0.99, (1 + s) / (10 + s)).

  python benchmarks/torch_vae_terrain.py --mode=eager|cl|compile [--steps=40] [--threads=2]

Prints ``RESULT {json}`` with ``steps_per_s`` (what ``benchmarks/vs_pytorch.py`` reads).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_common

BATCH, IMAGE, CHANNELS, ONE_HOT = 32, 32, 10, (3, 9)
LATENT_CH, LEVELS, WIDTH, MAX_WIDTH = 16, 3, 16, 128
LR, B1, B2, CLIP, WARM, EMA = 5e-4, 0.9, 0.999, 100.0, 100, 0.99
BITS = [c for c in range(CHANNELS) if not ONE_HOT[0] <= c < ONE_HOT[1]]
K = ONE_HOT[1] - ONE_HOT[0]
NUM_DIMS = IMAGE * IMAGE * (len(BITS) + 1)


def conv(cin, cout, k, bias=True):
  c = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)
  std = math.sqrt(1.0 / (cin * k * k)) / 0.87962566103423978  # flax's lecun_normal (truncated)
  with torch.no_grad():
    nn.init.trunc_normal_(c.weight, 0.0, std, -2 * std, 2 * std)
    if bias:
      c.bias.zero_()
  return c


def lrelu(x):
  return F.leaky_relu(x, 0.2)


class ConvBlock(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.skip = conv(cin, cout, 1, bias=False) if cin != cout else None
    self.c1, self.c2 = conv(cin, cout, 3), conv(cout, cout, 3)

  def forward(self, x):
    s = self.skip(x) if self.skip is not None else x
    return (lrelu(self.c2(lrelu(self.c1(x)))) + s) * (1 / math.sqrt(2.0))


def depth_to_space(x, cl):
  b, c4, h, w = x.shape
  c = c4 // 4
  y = x.permute(0, 2, 3, 1).reshape(b, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)
  y = y.permute(0, 3, 1, 2)
  return y if cl else y.contiguous()


def widths():
  return [min(MAX_WIDTH, WIDTH * 2**i) for i in range(LEVELS + 1)]  # fine -> coarse


class Encoder(nn.Module):
  def __init__(self):
    super().__init__()
    ws = widths()
    self.c0 = conv(CHANNELS, ws[0], 3)
    self.blocks = nn.ModuleList([ConvBlock(a, b) for a, b in zip(ws[:-1], ws[1:])])
    self.last = ConvBlock(ws[-1], ws[-1])
    self.out = conv(ws[-1], 2 * LATENT_CH, 1)

  def forward(self, x):
    h = self.c0(x)
    for b in self.blocks:
      h = F.avg_pool2d(b(h), 2)
    o = self.out(self.last(h))
    return o[:, :LATENT_CH], o[:, LATENT_CH:]


class Decoder(nn.Module):
  def __init__(self, cl):
    super().__init__()
    ws = widths()[::-1]
    self.cl = cl
    self.c0, self.b0 = conv(LATENT_CH, ws[0], 3), ConvBlock(ws[0], ws[0])
    self.ups = nn.ModuleList([conv(a, 4 * b, 3) for a, b in zip(ws[:-1], ws[1:])])
    self.blocks = nn.ModuleList([ConvBlock(b, b) for b in ws[1:]])
    self.out = conv(ws[-1], 2 * len(BITS) + K, 3)

  def forward(self, z):
    h = self.b0(self.c0(z))
    for up, b in zip(self.ups, self.blocks):
      h = b(lrelu(depth_to_space(up(h), self.cl)))
    return self.out(h)


def discretized_logistic_logp(x, mean, log_scale):
  log_scale = torch.clamp(log_scale, min=-7.0)
  centred = x - mean
  inv = torch.exp(-log_scale)
  plus, minus = inv * (centred + 1 / 255), inv * (centred - 1 / 255)
  cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
  log_cdf_plus = plus - F.softplus(plus)
  log_one_minus = -F.softplus(minus)
  mid = inv * centred
  log_pdf_mid = mid - log_scale - 2.0 * F.softplus(mid)
  inner = torch.where(cdf_delta > 1e-5, torch.log(torch.clamp(cdf_delta, min=1e-12)), log_pdf_mid - math.log(127.5))
  return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus, inner))


def log_prob(out, x):
  nb = len(BITS)
  xb = x[:, BITS]
  lp = discretized_logistic_logp(xb, out[:, :nb], out[:, nb : 2 * nb]).sum(dim=(1, 2, 3))
  target = x[:, ONE_HOT[0] : ONE_HOT[1]].argmax(dim=1)
  return lp - F.cross_entropy(out[:, 2 * nb :], target, reduction="none").sum(dim=(1, 2))


class Trainer(torch_common.Trainer):
  def __init__(self, mode, seed=0):
    torch.manual_seed(seed)
    cl = mode in ("cl", "compile_cl")
    self.mf = torch.channels_last if cl else torch.contiguous_format
    self.enc = Encoder().to(memory_format=self.mf)
    self.dec = Decoder(cl).to(memory_format=self.mf)
    self.params = list(self.enc.parameters()) + list(self.dec.parameters())
    self.setup_optimiser(mode, LR, B1, B2, CLIP, WARM, EMA)

  def _loss(self, x):
    mu, logvar = self.enc(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    rec = log_prob(self.dec(z), x)
    kl = 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(dim=(1, 2, 3))
    return (-rec + kl).mean() / (NUM_DIMS * math.log(2.0))


def batches(mf):
  """Terrain-shaped batches: RGB and height in [-1, 1], a one-hot biome map as +-1."""
  out = []
  for _ in range(4):
    x = torch.rand(BATCH, CHANNELS, IMAGE, IMAGE) * 2 - 1
    lab = F.one_hot(torch.randint(0, K, (BATCH, IMAGE, IMAGE)), K).permute(0, 3, 1, 2).float()
    x[:, ONE_HOT[0] : ONE_HOT[1]] = 2 * lab - 1
    out.append(x.contiguous(memory_format=mf))
  return out


if __name__ == "__main__":
  torch_common.main(Trainer, batches, BATCH)
