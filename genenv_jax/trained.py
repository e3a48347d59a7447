"""A trained model loaded back from a train.py workdir (for sampling and evaluation)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from genenv_jax import checkpoint, families, parallel
from genenv_jax import layout as layout_lib
from genenv_jax import workdir as workdir_lib
from genenv_jax.families import base
from genenv_jax.scenes import get_world


@dataclasses.dataclass
class Trained:
  config: object
  spec: base.DataSpec
  family: base.Family
  params: object  # the parameters that sample (EMA where the family keeps one)
  step: int
  world: object | None
  workdir: workdir_lib.Workdir
  layout: layout_lib.Layout
  train_params: object = None  # all trained parameters (a GAN's include its discriminator)
  scene_classes: tuple[str, ...] = ()  # names of the conditioning classes (conditional models)
  height_range_m: tuple[float, float] | None = None  # (lowest, highest) metres of heights trained in metres
  metres_per_pixel: float | None = None  # the ground resolution the data gave (GeoTIFF pixel size)

  def cond_index(self, cond: str | int) -> int:
    """A conditioning class given by name or index -> its index (-1: drawn per sample)."""
    text = str(cond).strip()
    if text in ("", "-1"):
      return -1
    if text in self.scene_classes:
      return self.scene_classes.index(text)
    if not self.spec.conditional:
      raise ValueError(f"cond={text!r}: this model is unconditional; leave --cond out")
    names = ", ".join(f"{i}={n}" for i, n in enumerate(self.scene_classes)) or f"0..{self.spec.num_classes - 1}"
    try:
      i = int(text)
    except ValueError:
      raise ValueError(f"cond={text!r}: not a class of this model; classes are {names}") from None
    if not 0 <= i < self.spec.num_classes:
      raise ValueError(f"cond={text!r}: not a class of this model; classes are {names}")
    return i

  @property
  def channels(self):
    return self.layout.channels


def with_sampler(
  model: Trained,
  solver: str = "",
  steps: int = 0,
  fine_temperature: float | None = None,
  upper_temperature: float | None = None,
  top_temperature: float | None = None,
  min_water_blocks: int | None = None,
) -> Trained:
  """``model`` sampling with another ODE solver and/or step count (flow matching only), and for a hierarchical
  model another ``hier.fine_temperature``, ``hier.upper_temperature``, ``hier.top_temperature`` and/or
  ``hier.min_water_blocks``; checked before compiling."""
  temps = (("fine_temperature", fine_temperature), ("upper_temperature", upper_temperature))
  temps += (("top_temperature", top_temperature), ("min_water_blocks", min_water_blocks))
  if not solver and not steps and all(t is None for _, t in temps):
    return model
  for name, t in temps:
    if t is not None and "hier" not in (model.family.extras or {}):
      raise ValueError(
        f"--{name}={t!r}: for hierarchical models only (family=flow_matching_hier); "
        f"family={model.config.family!r} has one level: use --temperature"
      )
  if model.family.canvas is None:
    raise ValueError(
      f"--solver/--steps: for flow matching only; family={model.config.family!r} has none to choose "
      "(a VAE's learned prior uses vae.prior_steps midpoint steps); leave them out"
    )
  from genenv_jax.families import flow_matching_hier as fmh

  hier = {}  # checked before anything is copied or compiled
  if fine_temperature is not None:
    hier["fine_temperature"] = fmh.check_fine_temperature(fine_temperature, "--fine_temperature")
  if upper_temperature is not None:
    hier["upper_temperature"] = fmh.check_upper_temperature(upper_temperature, "--upper_temperature")
  if top_temperature is not None:
    three = model.family.extras["hier"].top is not None
    hier["top_temperature"] = fmh.check_top_temperature(top_temperature, three, "--top_temperature")
  if min_water_blocks is not None:
    from genenv_jax.data import river_field

    hier["min_water_blocks"] = river_field.check_min_blocks(min_water_blocks, "--min_water_blocks")
    if hier["min_water_blocks"] > 1:
      river_field.check_prune_class(model.layout.class_names)
  config = model.config.copy_and_resolve_references()
  if solver:
    config.fm.solver = solver
  if steps:
    config.fm.sample_steps = steps
  if hier:
    config.unlock()  # a run's config from before a sampling key existed lacks it
  for k, v in hier.items():
    config.hier[k] = v
  return dataclasses.replace(model, config=config, family=families.make(config, model.spec))


def load(workdir: str, step: int | None = None) -> Trained:
  """Loads the config, family and EMA params of ``workdir`` at ``step`` (default: newest readable)."""
  wd = workdir_lib.Workdir(workdir)
  config, spec, class_names, scene_classes = wd.read_run()
  family = families.make(config, spec)
  n = 2
  batch = {
    "x": jnp.zeros((n, spec.image_size, spec.image_size, spec.channels)),
    "label": jnp.zeros((n,), jnp.int32),
  }
  abstract = jax.eval_shape(family.init, jax.random.PRNGKey(0), batch)
  # Restore replicated over this process's devices, whatever topology saved it.
  repl = parallel.replicated(parallel.local_mesh())
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), abstract)
  ck = checkpoint.Checkpointer.for_reading(wd.checkpoints, workdir)
  state, got = ck.restore_latest(abstract, step, set_aside=False)
  ck.close()
  if state is None:
    if step is not None:  # the asked step is damaged: name it, and the steps that do read
      ck = checkpoint.Checkpointer.for_reading(wd.checkpoints, workdir)
      others = [s for s in ck.all_steps() if s != step]
      readable = next((s for s in reversed(others) if ck.readable(s)), None)
      ck.close()
      fallback = f"step {readable} is readable (--step={readable}, or leave --step out for the newest readable)"
      raise FileNotFoundError(
        f"workdir={workdir!r}: checkpoint step {step} is unreadable (damaged or incomplete); "
        + (fallback if readable is not None else f"no other step in {wd.checkpoints} reads either")
      )
    raise FileNotFoundError(f"workdir={workdir!r}: no readable checkpoint in {wd.checkpoints}")
  world = get_world(config.data.world) if config.data.source == "world" else None
  raw = wd.read_raw()
  saved = raw.get("palette") or []  # a layered folder's classes.json colours
  hrm = tuple(raw["height_range_m"]) if raw.get("height_range_m") else None
  palette = world.palette if world else (np.asarray(saved, np.uint8) if len(saved) else layout_lib.NO_PALETTE)
  layout = layout_lib.Layout(tuple(config.data.channels), class_names, palette)
  mpp = raw.get("metres_per_pixel")
  return Trained(
    config, spec, family, state.ema_params, int(got), world, wd, layout, state.params, scene_classes, hrm, mpp
  )
