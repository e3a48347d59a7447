"""Optax optimisers from config: Adam with a learning-rate schedule and clipping."""

from __future__ import annotations

import optax


def make(optim_cfg, lr: float, total_steps: int, restart_at: int = 0) -> optax.GradientTransformation:
  """``clip_by_global_norm`` then Adam(b1, b2) on a warm-up + constant/cosine schedule.

  ``restart_at`` (0 < restart_at < total_steps): the schedule runs over the first ``restart_at`` steps, then
  starts again (warm-up, then decay over the rest; SGDR's warm restart). Adam's state is the same either way,
  so a run trained to ``restart_at`` steps without a restart continues exactly as one planned with it.
  """
  if 0 < restart_at < total_steps:
    phases = [_schedule(optim_cfg, lr, restart_at), _schedule(optim_cfg, lr, total_steps - restart_at)]
    return _chain(optim_cfg, optax.join_schedules(phases, [restart_at]))
  return _chain(optim_cfg, _schedule(optim_cfg, lr, total_steps))


def _schedule(optim_cfg, lr: float, total_steps: int):
  if lr <= 0:
    raise ValueError(f"optim learning rate {lr}: must be > 0")
  if optim_cfg.schedule not in ("constant", "cosine"):
    raise ValueError(f"optim.schedule={optim_cfg.schedule!r}: must be 'constant' or 'cosine'")
  warm = max(1, int(optim_cfg.warmup_steps))
  lr0 = lr / warm  # the first step already moves the parameters
  if optim_cfg.schedule == "cosine":
    sched = optax.warmup_cosine_decay_schedule(lr0, lr, warm, max(total_steps, warm + 1), end_value=lr * 0.1)
  else:
    sched = optax.join_schedules([optax.linear_schedule(lr0, lr, warm), optax.constant_schedule(lr)], [warm])
  return sched


def _chain(optim_cfg, sched) -> optax.GradientTransformation:
  parts = []
  if optim_cfg.clip_norm and optim_cfg.clip_norm > 0:
    parts.append(optax.clip_by_global_norm(optim_cfg.clip_norm))
  parts.append(optax.adam(sched, b1=optim_cfg.b1, b2=optim_cfg.b2))
  return optax.chain(*parts)
