"""The family protocol: a model family is a NamedTuple of pure functions.

Like optax's ``GradientTransformation(init, update)``: the generic training
loop (``genenv_jax.training``) jits ``train_step`` once, donated and sharded
over the mesh, and knows nothing else about the family.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any
Batch = dict[str, jax.Array]  # {'x': [b, h, w, C] float32 in [-1, 1], 'label': [b] int32}
Metrics = dict[str, jax.Array]


class TrainState(NamedTuple):
  """Everything a run needs to continue; what the checkpoint holds.

  Attributes:
    step: scalar int32, number of steps taken.
    params: the family's trainable parameters (a GAN's are {'g': ..., 'd': ...}).
    opt_state: the optax states, same top-level keys as ``params``.
    ema_params: exponential moving average of the parameters that sample.
    rng: [2] uint32 base key; the key of step s is ``fold_in(rng, s)``.
    skipped: scalar int32, steps skipped because the loss was not finite.
  """

  step: jax.Array
  params: PyTree
  opt_state: PyTree
  ema_params: PyTree
  rng: jax.Array
  skipped: jax.Array


class DataSpec(NamedTuple):
  """What a family needs to know about the data (never the whole config)."""

  image_size: int
  channels: int
  num_classes: int  # scene classes the model is conditioned on; 1 = unconditional
  one_hot: tuple[int, int] = (0, 0)  # [start, stop) of one-hot label channels, if any

  @property
  def conditional(self) -> bool:
    return self.num_classes > 1


class MetricRoles(NamedTuple):
  """What a family's metric names mean, so the loop, evaluation and tests never guess from names.

  Attributes:
    shown: train-step metrics for the progress bar.
    compare: train-step metrics that must agree across device counts (tests).
    likelihood: ``eval_step`` metrics that are test bits/dim, with the short
      name the results table prints for each (e.g. ``{'iw_bpd': 'iw'}``).
  """

  shown: tuple[str, ...]
  compare: tuple[str, ...]
  likelihood: dict[str, str] = {}


class Tiling(NamedTuple):
  """How a fully convolutional family renders scenes larger than its training size.

  Attributes:
    render: (params, z [n, gh, gw, latent_channels], cond [n]) -> [n, gh*cell_px, gw*cell_px, C].
    cell_px: pixels per latent cell.
    latent_channels: channels of one latent cell.
    margin_cells: latent cells of context each side of a tile (>= the
      generator's receptive field, so tiles join without seams).
  """

  render: Callable[..., jax.Array]
  cell_px: int
  latent_channels: int
  margin_cells: int


class Canvas(NamedTuple):
  """How a family that samples by an ODE renders scenes larger than its training size (``genenv_jax.canvas``).

  Attributes:
    velocity: (params, x [b, s, s, C], t [b], label [b]) -> [b, s, s, C].
    window: the training size: the windows the velocity is evaluated on.
    channels: channels of the model tensor.
    attention: whether the network attends across a whole window.
    finalize: ODE end point -> model tensor (one-hot snapping, clipping).
    solver, steps: the family's default ODE solver and step count.
  """

  velocity: Callable[..., jax.Array]
  window: int
  channels: int
  attention: bool
  finalize: Callable[[jax.Array], jax.Array]
  solver: str
  steps: int


class Family(NamedTuple):
  """A model family.

  Attributes:
    init: (key, batch) -> TrainState.
    train_step: (TrainState, batch) -> (TrainState, metrics).
    eval_step: (TrainState, batch) -> metrics.
    sample: (params, key, n, cond, temperature) -> [n, h, w, C] in [-1, 1];
      sample i depends only on (params, key, i). ``n`` must be static under jit.
      ``temperature=None`` means ``sample_temperature``.
    roles: what the metric names mean (``MetricRoles``).
    sample_temperature: the family's default latent scale: what evaluation
      scores and what ``sample.py`` writes unless told otherwise.
    tiling: for fully convolutional families, how to render large scenes.
    canvas: for ODE families, how to render large scenes (one canvas-wide ODE).
    extras: further named pure functions a family offers (a VAE's
      ``reconstruct(params, x)`` and ``interpolate(params, x_a, x_b, steps)``).
    phases: ``(first_step, train_step)`` pairs, ascending: from ``first_step`` on the loop runs that step
      instead (same state; its metrics may be a subset: a two-level model's coarse level alone logs no
      ``loss``). Chosen on the host by step number and jitted apart: a ``lax.cond`` on the step inside one
      jitted step ran XLA:CPU's convolutions ~20x slower (7 s a step against 0.3 s).
  """

  init: Callable[[jax.Array, Batch], TrainState]
  train_step: Callable[[TrainState, Batch], tuple[TrainState, Metrics]]
  eval_step: Callable[[TrainState, Batch], Metrics]
  sample: Callable[..., jax.Array]
  roles: MetricRoles
  sample_temperature: float = 1.0
  tiling: Tiling | None = None
  canvas: Canvas | None = None
  extras: dict[str, Callable[..., jax.Array]] | None = None  # e.g. a VAE's 'reconstruct', 'interpolate'
  phases: tuple[tuple[int, Callable[[TrainState, Batch], tuple[TrainState, Metrics]]], ...] = ()


def ema_update(ema: PyTree, new: PyTree, step: jax.Array, decay: float) -> PyTree:
  """EMA with warm-up: the effective decay grows as (1+s)/(10+s) up to ``decay``."""
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, new)


def keep_if_finite(ok: jax.Array, new: PyTree, old: PyTree) -> PyTree:
  """Selects ``new`` where ``ok`` else ``old``, leaf by leaf (skips a bad step)."""
  return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def tree_all_finite(tree: PyTree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def finish_step(state: TrainState, params, opt_state, ema_source, ok: jax.Array, ema_decay: float) -> TrainState:
  """The state after one step: updated if ``ok`` (finite), else kept and counted as skipped.

  Args:
    state: the state before the step.
    params: the updated parameters.
    opt_state: the updated optimiser state.
    ema_source: the parameters the EMA tracks (a GAN's generator).
    ok: scalar bool, whether loss and gradients were finite.
    ema_decay: EMA decay (see ``ema_update``).
  """
  new = TrainState(
    step=state.step + 1,
    params=params,
    opt_state=opt_state,
    ema_params=ema_update(state.ema_params, ema_source, state.step, ema_decay),
    rng=state.rng,
    skipped=state.skipped,
  )
  kept = keep_if_finite(ok, new, state._replace(step=state.step + 1))
  return kept._replace(skipped=state.skipped + (~ok).astype(jnp.int32))


def optimizer_step(state: TrainState, tx, loss: jax.Array, grads, ema_decay: float) -> TrainState:
  """One optax step of a single-optimiser family: all parameters updated and EMA-tracked; skipped if not finite."""
  upd, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, upd)
  ok = jnp.isfinite(loss) & tree_all_finite(grads)
  return finish_step(state, params, opt_state, params, ok, ema_decay)


def initial_state(params, opt_state, ema_source, rng: jax.Array) -> TrainState:
  """Step 0. The EMA starts as a copy with its own buffers (the step donates both)."""
  if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)  # raw uint32 keys checkpoint everywhere
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_state=opt_state,
    ema_params=jax.tree.map(jnp.copy, ema_source),
    rng=rng,
    skipped=jnp.zeros((), jnp.int32),
  )
