"""The one generic training loop: init or restore, step, log, evaluate, checkpoint.

It knows nothing family-specific: a family is a NamedTuple of pure functions
(``families.base.Family``). The step is jitted once with the state donated,
parameters replicated and the batch sharded along the mesh's ``data`` axis.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from genenv_jax import checkpoint, config_utils, evaluation, families, logs, parallel
from genenv_jax.data import pipeline, sources
from genenv_jax.families import base
from genenv_jax.scenes import get_world

EVAL_SEED = 0xE7A1
_SHOWN = ("loss", "bpd", "d_loss", "g_loss")


class _StopSignal:
  """SIGINT/SIGTERM (Ctrl-C, preemption) ask the loop to stop after the current step.

  The loop then saves a checkpoint; a second signal interrupts at once.
  """

  def __init__(self):
    self.requested = None
    self._old = {}
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._old[sig] = signal.signal(sig, self._handle)

  def _handle(self, signum, frame):
    if self.requested:
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name

  def restore(self):
    for sig, old in self._old.items():
      signal.signal(sig, old)


class TrainingDiverged(RuntimeError):
  """Raised (after a checkpoint is saved) when too many steps were non-finite."""


class Setup:
  """Everything built from the config before the loop (also used by tests and benchmarks)."""

  def __init__(self, config, mesh=None):
    config_utils.validate(config)
    self.config = config
    self.mesh = mesh or parallel.make_mesh(config.mesh.num_devices)
    parallel.check_batch(config.train.batch_size, self.mesh)
    d = config.data
    self.world = get_world(d.world) if d.source == "world" else None
    self.num_label_classes = len(self.world.class_names) if self.world else 0
    # Check the family's config before any data is generated or read.
    families.make(config, self._spec(num_classes=2 if d.conditional else 1))
    self.train_source = sources.make_source(d, "train")
    self.test_source = sources.make_source(d, "test")
    self.spec = self._spec(self.train_source.num_classes)
    if d.conditional and self.spec.num_classes < 2:
      raise ValueError("data.conditional=True: the data source has no scene classes (num_classes=1)")
    self.family = families.make(config, self.spec)
    self.repl = parallel.replicated(self.mesh)
    self.bsh = parallel.batch_sharded(self.mesh)
    self.loader = pipeline.Loader(
      self.train_source, d.channels, self.num_label_classes, config.seed, config.train.batch_size, self.bsh
    )
    self.init_fn = jax.jit(self.family.init, out_shardings=self.repl)
    self.step_fn = jax.jit(
      self.family.train_step,
      in_shardings=(self.repl, self.bsh),
      out_shardings=(self.repl, self.repl),
      donate_argnums=(0,),
    )
    self.eval_fn = jax.jit(self.family.eval_step, in_shardings=(self.repl, self.bsh), out_shardings=self.repl)
    self.sample_fn = jax.jit(self.family.sample, static_argnums=(2,), out_shardings=self.bsh)

  def _spec(self, num_classes: int) -> base.DataSpec:
    d = self.config.data
    return base.DataSpec(
      image_size=d.image_size,
      channels=pipeline.num_channels(d.channels, self.num_label_classes),
      num_classes=num_classes,
      one_hot=pipeline.one_hot_range(d.channels, self.num_label_classes),
    )

  def init_key(self):
    return jax.random.PRNGKey(self.config.seed)

  def abstract_state(self):
    """Shapes, dtypes and shardings of the state, without allocating it."""
    shapes = jax.eval_shape(self.family.init, self.init_key(), self.loader.global_batch_at(0))
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.repl), shapes)

  def init_state(self):
    return self.init_fn(self.init_key(), self.loader.global_batch_at(0))


def save_run_info(workdir: str, config, spec: base.DataSpec) -> None:
  """Writes ``run.json``: the config and data layout, so sample.py needs no dataset."""
  evaluation.write_json(
    os.path.join(workdir, "run.json"), {"config": json.loads(config.to_json_best_effort()), "spec": spec._asdict()}
  )


def load_run_info(workdir: str):
  """Reads ``run.json`` back: (config, DataSpec)."""
  path = os.path.join(workdir, "run.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"workdir={workdir!r}: no run.json; is this a train.py workdir?")
  with open(path) as f:
    info = json.load(f)
  config = ml_collections.ConfigDict(info["config"])
  spec = info["spec"]
  spec["one_hot"] = tuple(spec["one_hot"])
  return config, base.DataSpec(**spec)


def run(config, workdir: str, stop_at: int | None = None):
  """Trains ``config`` in ``workdir``, resuming from its newest readable checkpoint.

  Args:
    config: the ml_collections config.
    workdir: where checkpoints, metrics, TensorBoard events and grids go.
    stop_at: stop after this step (as if interrupted) instead of ``train.num_steps``.

  Returns:
    The final ``TrainState``.
  """
  t_cfg = config.train
  su = Setup(config)
  lead = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  if lead:
    save_run_info(workdir, config, su.spec)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), t_cfg.ckpt_every, t_cfg.keep_checkpoints)
  state, start = ckpt.restore_latest(su.abstract_state())
  if state is None:
    state, start = su.init_state(), 0
    logging.info("initialised a new run in %s", workdir)
  else:
    logging.info("resumed from step %d in %s", start, workdir)
  writer = logs.MetricWriter(workdir, start, enabled=lead)
  evaluator = evaluation.SceneEvaluator(
    su.world,
    su.train_source,
    su.test_source,
    config.data.channels,
    su.num_label_classes,
    t_cfg.eval_samples,
    evaluation.make_feature_net(t_cfg.get("feature_net", "default"), su.mesh),
  )
  test_loader = pipeline.Loader(
    su.test_source, config.data.channels, su.num_label_classes, config.seed + 1, t_cfg.batch_size, su.bsh
  )
  palette = su.world.palette if su.world else np.zeros((1, 3), np.uint8)

  def do_eval(step):
    ema = state.ema_params
    x = evaluation.sample_batches(
      su.sample_fn, ema, jax.random.PRNGKey(EVAL_SEED), t_cfg.eval_samples, t_cfg.batch_size
    )
    m = {f"eval/{k}": v for k, v in evaluator.score(x).items()}
    family_metrics = jax.device_get(su.eval_fn(state, test_loader.global_batch_at(step)))
    m.update({f"eval/{k}": float(v) for k, v in family_metrics.items()})
    m.update(evaluator.reference)
    if lead:
      g = t_cfg.grid_size
      path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
      evaluator.grid(x[: g * g], path, g, palette)
      evaluator.grid(x[: g * g], os.path.join(workdir, "samples", "latest.png"), g, palette)
      evaluation.write_json(os.path.join(workdir, "eval.json"), {"step": step, **m})
    writer.write(step, m)
    return m

  stop = t_cfg.num_steps if stop_at is None else min(stop_at, t_cfg.num_steps)
  if start == 0 and stop > 0:
    do_eval(0)  # The untrained generator: the floor of every metric.
  pending, last_t, last_step = [], time.time(), start
  bar = tqdm(total=stop, initial=start, disable=not lead, dynamic_ncols=True, desc="train")
  step = start
  stopper = _StopSignal()
  try:
    for step, batch in su.loader.iterate(start, stop):
      state, metrics = su.step_fn(state, batch)
      pending.append(metrics)
      if len(pending) >= 2:
        # Keep at most two steps in flight: bounded queues (an 8-device CPU
        # mesh aborted with ~60 queued steps) and no sync on the newest step.
        jax.block_until_ready(pending[-2])
      done = step + 1
      bar.update(1)
      if done % t_cfg.log_every == 0 or done == stop:
        host = jax.device_get(pending)
        pending = []
        now = time.time()
        rate = (done - last_step) / max(now - last_t, 1e-9)
        last_t, last_step = now, done
        m = {k: float(np.mean([h[k] for h in host])) for k in host[0]}
        m["skipped"] = float(host[-1]["skipped"])
        m["steps_per_s"], m["images_per_s"] = rate, rate * t_cfg.batch_size
        writer.write(done, m)
        bar.set_postfix(
          steps_s=f"{rate:.2f}", img_s=f"{rate * t_cfg.batch_size:.0f}", **{k: f"{m[k]:.3f}" for k in _SHOWN if k in m}
        )
        if m["skipped"] > t_cfg.max_nonfinite:
          ckpt.save(done, state, force=True)
          ckpt.wait()
          raise TrainingDiverged(
            f"step {done}: {int(m['skipped'])} steps had a non-finite loss (train.max_nonfinite="
            f"{t_cfg.max_nonfinite}); saved a checkpoint in {workdir}. Lower optim.*_lr or raise gan.r1_gamma."
          )
      if done % t_cfg.ckpt_every == 0:
        ckpt.save(done, state, force=True)
      if done % t_cfg.eval_every == 0 or done == t_cfg.num_steps:
        do_eval(done)
      if stopper.requested:
        logging.warning("signal %s: saving step %d and stopping; rerun to resume", stopper.requested, done)
        break
  finally:
    bar.close()
    stopper.restore()
  final = int(jax.device_get(state.step))
  if final not in ckpt.all_steps():
    ckpt.save(final, state, force=True)
  ckpt.wait()
  ckpt.close()
  writer.close()
  return state
