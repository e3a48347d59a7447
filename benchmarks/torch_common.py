"""What the single-optimiser PyTorch replicas share (benchmark-only; needs torch in its own environment).

``Trainer``: warm-up learning rate, global-norm clip, Adam, EMA of all
parameters and the skip of non-finite steps, as ``genenv_jax``'s
``base.optimizer_step`` does; ``main``: the command line and the timing that
``benchmarks/vs_pytorch.py`` reads (``RESULT {json}`` with ``steps_per_s``).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


class Trainer:
  """Subclasses set ``self.params`` (a list) and ``self.mf`` (memory format) and define ``_loss(x)``."""

  def setup_optimiser(self, mode, lr, b1, b2, clip, warm, ema):
    self.lr, self.clip, self.warm, self.ema_decay = lr, clip, warm, ema
    self.ema = [p.detach().clone() for p in self.params]
    self.opt = torch.optim.Adam(self.params, lr=lr / warm, betas=(b1, b2), eps=1e-8, foreach=True)
    self.step = 0
    self.loss_fn = torch.compile(self._loss) if mode.startswith("compile") else self._loss

  def train_step(self, x):
    lr0 = self.lr / self.warm
    for g in self.opt.param_groups:
      g["lr"] = lr0 + (self.lr - lr0) * min(self.step, self.warm) / self.warm
    loss = self.loss_fn(x)
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
    if bool(torch.isfinite(loss) & torch.isfinite(norm)):
      self.opt.step()
      d = min(self.ema_decay, (1.0 + self.step) / (10.0 + self.step))
      with torch.no_grad():
        torch._foreach_lerp_(self.ema, [p.detach() for p in self.params], 1.0 - d)
    self.step += 1
    return loss.detach()


def main(make_trainer, make_batches, batch_size: int):
  """``make_trainer(mode)`` -> Trainer; ``make_batches(memory_format)`` -> 4 batches. Prints RESULT."""
  p = argparse.ArgumentParser()
  p.add_argument("--mode", default="eager", choices=["eager", "cl", "compile", "compile_cl"])
  p.add_argument("--steps", type=int, default=40)
  p.add_argument("--warmup", type=int, default=5)
  p.add_argument("--threads", type=int, default=2)
  a = p.parse_args()
  torch.set_num_threads(a.threads)
  tr = make_trainer(a.mode)
  xs = make_batches(tr.mf)
  n = sum(q.numel() for q in tr.params)
  print(f"torch {torch.__version__} threads {torch.get_num_threads()} mode {a.mode} params {n}")
  for i in range(a.warmup):
    loss = tr.train_step(xs[i % 4])
  print("loss after warm-up", float(loss))
  t = time.perf_counter()
  for i in range(a.steps):
    loss = tr.train_step(xs[i % 4])
  float(loss)
  sps = a.steps / (time.perf_counter() - t)
  print("RESULT " + json.dumps({"mode": a.mode, "steps_per_s": sps, "images_per_s": sps * batch_size, "params": n}))
