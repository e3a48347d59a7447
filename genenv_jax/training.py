"""The one generic training loop: init or restore, step, log, evaluate, checkpoint.

It knows nothing family-specific: a family is a NamedTuple of pure functions
(``families.base.Family``). The step is jitted once with the state donated,
parameters replicated and the batch sharded along the mesh's ``data`` axis.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time

import jax
import numpy as np
from tqdm import tqdm

from genenv_jax import checkpoint, config_utils, cpu_kernels, families, logs, parallel
from genenv_jax import layout as layout_lib
from genenv_jax import workdir as workdir_lib
from genenv_jax.data import pipeline, sources
from genenv_jax.families import base
from genenv_jax.metrics import scorer
from genenv_jax.scenes import base as scene_base
from genenv_jax.scenes import get_world

EVAL_SEED = 0xE7A1


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
    self.layout = layout_lib.Layout.for_data(d.channels, self.world)
    # Opening a source is cheap (a world is generated on first read), so the
    # family below checks its config before any scene is drawn.
    self.train_source = sources.make_source(d, "train", config.get("hier"))
    self.test_source = sources.make_source(d, "test", config.get("hier"))
    if getattr(self.train_source, "label_classes", ()):  # a layered folder's classes.json
      self.layout = layout_lib.Layout(tuple(d.channels), self.train_source.label_classes, self.train_source.palette)
    if d.source != "world":
      for split, src in (("train", self.train_source), ("test", self.test_source)):
        if len(src) < 8:
          where = f"data.path={d.path!r}" if d.source == "folder" else f"data.name={d.name!r} ({split} split)"
          raise ValueError(
            f"{where}: {len(src)} usable images; training and evaluation need at least 8 in each split "
            f"({split}: {src.description})"
          )
    if d.conditional and self.train_source.num_classes < 2:
      how = {
        "folder": f"put the images of each class in their own subfolder of data.path={d.path!r}",
        "tfds": f"data.label_key={d.label_key!r} must name a ClassLabel feature",
      }.get(d.source, "this world has one scene class")
      raise ValueError(f"data.conditional=True: the data source has no scene classes ({how})")
    self.scene_classes = tuple(self.train_source.class_names) if d.conditional else ()
    self.spec = base.DataSpec(
      image_size=d.image_size,
      channels=self.layout.num_channels,
      num_classes=self.train_source.num_classes if d.conditional else 1,
      one_hot=self.layout.one_hot,
    )
    self.family = families.make(config, self.spec)
    if self.world is not None:  # the world's own size rules, before any scene is drawn
      scene_base.check_size(self.world.name, d.image_size, self.world.min_size)
    self.repl = parallel.replicated(self.mesh)
    self.bsh = parallel.batch_sharded(self.mesh)
    self.loader = pipeline.Loader(self.train_source, self.layout, config.seed, config.train.batch_size, self.bsh)
    self.init_fn = jax.jit(self.family.init, out_shardings=self.repl)
    options = cpu_kernels.compiler_options(config.train.get("cpu_convolutions", "xla"))
    self.step_fns = [
      jax.jit(
        fn,
        in_shardings=(self.repl, self.bsh),
        out_shardings=(self.repl, self.repl),
        donate_argnums=(0,),
        compiler_options=options,
      )
      for fn in (self.family.train_step, *(f for _, f in self.family.phases))
    ]
    self.phase_starts = (0, *(s for s, _ in self.family.phases))
    self.step_fn = self.step_fns[0]
    self.eval_fn = jax.jit(self.family.eval_step, in_shardings=(self.repl, self.bsh), out_shardings=self.repl)
    self.sample_fn = jax.jit(self.family.sample, static_argnums=(2,), out_shardings=self.bsh)

  def phase_at(self, step: int) -> int:
    """Which of ``step_fns`` trains step ``step`` (the family's ``phases``)."""
    return max(i for i, first in enumerate(self.phase_starts) if step >= first)

  def init_key(self):
    return jax.random.PRNGKey(self.config.seed)

  def abstract_state(self):
    """Shapes, dtypes and shardings of the state, without allocating it."""
    shapes = jax.eval_shape(self.family.init, self.init_key(), self.loader.global_batch_at(0))
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.repl), shapes)

  def init_state(self):
    return self.init_fn(self.init_key(), self.loader.global_batch_at(0))


def headline(step: int, m: dict, n: int) -> str:
  """One console line per evaluation: KID first (unbiased, comparable across sample counts), then the rest."""
  parts = [f"step {step}:"]
  if "eval/kid" in m:
    parts.append(f"KID {m['eval/kid']:.3f} (real {m.get('real/kid', float('nan')):.3f})")
  if "eval/validity" in m:
    parts.append(f"validity {m['eval/validity']:.3f}")
  if "eval/c2st/pixels" in m:
    parts.append(f"C2ST pixels {m['eval/c2st/pixels']:.2f}")
  if "eval/fd" in m:
    parts.append(f"FD@{n} {m['eval/fd']:.2f}")
  return " ".join(parts) if len(parts) > 1 else f"step {step}: evaluated"


def run(config, workdir: str, stop_at: int | None = None, overwrite: bool = False):
  """Trains ``config`` in ``workdir``, resuming from its newest readable checkpoint.

  Args:
    config: the ml_collections config.
    workdir: where checkpoints, metrics, TensorBoard events and grids go
      (``genenv_jax.workdir``). A workdir belongs to one run: another config
      is refused unless ``overwrite``, which deletes the old run first.
    stop_at: stop after this step (as if interrupted) instead of ``train.num_steps``.
    overwrite: delete an existing run in ``workdir`` first.

  Returns:
    The final ``TrainState``.
  """
  wd = workdir_lib.Workdir(workdir)
  lead = jax.process_index() == 0
  logs.phase("checking the config")
  _resolve_kernels(config, wd)
  su = Setup(config)  # every config check; no scene is generated yet
  if overwrite and lead and wd.has_run():
    with wd.lock():
      pass  # refuse to delete the workdir of a training that is running
    shutil.rmtree(wd.path)
  changed = wd.check_same_run(config)
  wd.create()
  if lead:
    with wd.lock():
      return _run(su, wd, stop_at, changed)
  return _run(su, wd, stop_at, changed)


def _resolve_kernels(config, wd: workdir_lib.Workdir) -> None:
  """train.cpu_convolutions='auto' -> the kernels run.json records: the existing run's, else this backend's best."""
  t = config.train
  if t.get("cpu_convolutions", "xla") != cpu_kernels.AUTO:
    return
  recorded = None
  if wd.has_run():
    theirs = workdir_lib.with_legacy_defaults(wd.read_raw()["config"], workdir_lib.config_dict(config))
    recorded = theirs.get("train", {}).get("cpu_convolutions")
  with config.unlocked() if hasattr(config, "unlocked") else contextlib.nullcontext():
    t.cpu_convolutions = cpu_kernels.resolve(cpu_kernels.AUTO, recorded)


def _run(su: Setup, wd: workdir_lib.Workdir, stop_at: int | None, changed: list[str]):
  config = su.config
  t_cfg = config.train
  lead = jax.process_index() == 0
  if changed:
    logging.warning("resuming %s with changed settings: %s", wd, ", ".join(changed))
  if lead:
    wd.write_run(
      config,
      su.spec,
      su.layout.class_names,
      su.scene_classes,
      su.layout.palette,
      getattr(su.train_source, "height_range_m", None),
      getattr(su.train_source, "metres_per_pixel", None),
    )
  logs.phase("preparing the data")
  logs.phase(f"data: {len(su.train_source)} training and {len(su.test_source)} test scenes")
  ckpt = checkpoint.Checkpointer(wd.checkpoints, t_cfg.ckpt_every, t_cfg.keep_checkpoints)
  state, start = ckpt.restore_latest(su.abstract_state())
  if state is None:
    with logs.waiting("initialising the parameters (compiling the model)"):
      state, start = su.init_state(), 0
    logs.phase(f"initialised a new run in {wd}")
  else:
    logs.phase(f"resumed from step {start} in {wd}")
  writer = logs.MetricWriter(wd, start, enabled=lead)
  with logs.waiting(f"scoring {t_cfg.eval_samples} real held-out scenes (the reference of every evaluation)"):
    evaluator = scorer.SceneEvaluator(
      su.world,
      su.train_source,
      su.test_source,
      su.layout,
      t_cfg.eval_samples,
      scorer.make_feature_net(t_cfg.get("feature_net", "default"), su.mesh),
    )
  test_loader = pipeline.Loader(su.test_source, su.layout, config.seed + 1, t_cfg.batch_size, su.bsh)
  roles = su.family.roles

  def do_eval(step):
    """The evaluation of ``step``: part of that step's commit (redone on resume if it is missing)."""
    ema = state.ema_params
    x = scorer.sample_batches(su.sample_fn, ema, jax.random.PRNGKey(EVAL_SEED), t_cfg.eval_samples, t_cfg.batch_size)
    m = {f"eval/{k}": v for k, v in evaluator.score(x).items()}
    family_metrics = jax.device_get(su.eval_fn(state, test_loader.global_batch_at(step)))
    m.update({f"eval/{k}": float(v) for k, v in family_metrics.items()})
    m.update(evaluator.reference)
    m["eval/num_samples"] = float(t_cfg.eval_samples)
    logs.phase(headline(step, m, t_cfg.eval_samples))
    if lead:
      g = t_cfg.grid_size
      evaluator.grid(x[: g * g], wd.sample_grid(step), g)
      evaluator.grid(x[: g * g], wd.sample_grid(None), g)
      workdir_lib.write_json(wd.eval_json, {"step": step, **m})
    writer.write(step, m)
    return m

  def eval_due(step):
    return step == 0 or step % t_cfg.eval_every == 0 or step == t_cfg.num_steps

  stop = t_cfg.num_steps if stop_at is None else min(stop_at, t_cfg.num_steps)
  # The untrained model at step 0 (the floor of every metric), or a resumed
  # step whose evaluation a kill lost between its checkpoint and its row.
  if eval_due(start) and not (writer.has_eval(start) and (not lead or os.path.exists(wd.sample_grid(start)))):
    with logs.waiting(f"evaluating step {start} ({t_cfg.eval_samples} samples; the first evaluation compiles)"):
      do_eval(start)
  skipped_at_start = int(jax.device_get(state.skipped))
  pending, last_t, last_step = [], time.time(), start
  if start >= stop:
    logs.phase(f"already trained to step {start} (train.num_steps={t_cfg.num_steps}); nothing to do")
  else:
    logs.phase(f"training steps {start}..{stop}")
  bar = tqdm(total=stop, initial=start, disable=not lead, dynamic_ncols=True, desc="train")
  stopper = _StopSignal()

  def log(done):
    nonlocal pending, last_t, last_step
    host = jax.device_get(pending)
    pending = []
    now = time.time()
    rate = (done - last_step) / max(now - last_t, 1e-9)
    last_t, last_step = now, done
    # Steps of different phases may log different keys (a two-level model's coarse-only steps have no 'loss').
    keys = dict.fromkeys(k for h in host for k in h)
    m = {k: float(np.mean([h[k] for h in host if k in h])) for k in keys}
    m["skipped"] = float(host[-1]["skipped"])
    m["steps_per_s"], m["images_per_s"] = rate, rate * t_cfg.batch_size
    writer.write(done, m)
    bar.set_postfix(
      steps_s=f"{rate:.2f}", img_s=f"{rate * t_cfg.batch_size:.0f}", **{k: f"{m[k]:.3f}" for k in roles.shown if k in m}
    )
    return m

  try:
    phase = None
    for step, batch in su.loader.iterate(start, stop):
      if su.phase_at(step) != phase:  # the first call compiles (minutes on a small CPU; the cache skips it later)
        phase = su.phase_at(step)
        what = "the train step" if phase == 0 else f"the train step from step {su.phase_starts[phase]} on"
        with logs.waiting(f"compiling {what}"):
          state, metrics = su.step_fns[phase](state, batch)
      else:
        state, metrics = su.step_fns[phase](state, batch)
      pending.append(metrics)
      if len(pending) >= 2:
        # Keep at most two steps in flight: bounded queues (an 8-device CPU
        # mesh aborted with ~60 queued steps) and no sync on the newest step.
        jax.block_until_ready(pending[-2])
      done = step + 1
      bar.update(1)
      if done % t_cfg.log_every == 0 or done == stop or stopper.requested:
        m = log(done)
        run_skipped = int(m["skipped"]) - skipped_at_start
        if run_skipped > t_cfg.max_nonfinite:
          ckpt.save(done, state, force=True)
          ckpt.wait()
          raise TrainingDiverged(
            f"step {done}: {run_skipped} steps of this run had a non-finite loss (train.max_nonfinite="
            f"{t_cfg.max_nonfinite}); saved a checkpoint in {wd}. Lower optim.*_lr or raise gan.r1_gamma and "
            "rerun: the run resumes from that checkpoint and the count starts again."
          )
      if done % t_cfg.ckpt_every == 0:
        ckpt.save(done, state, force=True)
      if eval_due(done):
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
