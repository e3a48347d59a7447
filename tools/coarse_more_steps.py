r"""An experiment: trains a shipped model's upper levels alone for more steps, the fine level kept.

  python tools/coarse_more_steps.py --model=fm_city_hier --steps=3000 --output=runs/fm_city_hier_coarse3k.npz
  python tools/hier_levels.py --model=fm_city_hier --weights=runs/fm_city_hier_coarse3k.npz

``tools/hier_levels.py`` shows where a two-level model loses its large
structures; for the city it is the coarse level (the fine level over real
coarse maps draws rivers and lakes). This asks whether the coarse level was
only short of training: it starts from the shipped weights (the EMA ones),
trains ``params['coarse']`` on the same coarse maps the :cpu config trains on
(the coarse-map file beside the TFDS data, ``--data_dir``, drawn there first where it is not), with the
config's loss (conditional flow matching, the config's time sampling), Adam
at the config's batch size, a warmup and cosine decay from ``--lr``, and an
EMA of the config's decay, and writes the whole parameter tree (fine level
unchanged) as an ``.npz`` that ``models.load(NAME, weights=FILE)`` and
``tools/hier_levels.py --weights`` read. It
prints the coarse loss on the held-out coarse maps before and after. An
experiment, not a training recipe: what a config runs is ``hier.fine_steps``
(both levels for that many steps, then the coarse level alone in ``train.py``,
its schedule started again; ``configs/fm_city_hier.py:cpu`` does, from this
experiment's finding).

A three-level model (``hier.top_factor``) trains its top and coarse levels
together, as ``train.py``'s coarse-only phase does: the coarse level
conditioned on its own map pooled to the top level's scale with the config's
conditioning noise (``flow_matching_hier.condition``), the top level on the
top maps (``hier.top_num_train``); both held-out losses are printed.
  python tools/coarse_more_steps.py --model=fm_city_hier3 --steps=3000 --output=runs/fm_city_hier3_up3k.npz
  python tools/hier_levels.py --model=fm_city_hier3 --weights=runs/fm_city_hier3_up3k.npz \
    --scene_size=1024x1024 --num_samples=10 --coarse_only

``--fresh``: the upper levels start from the config's initialisation (``--seed``), not the shipped weights,
and train with the config's optimiser (``optim``: its learning rate, warmup and schedule over ``--steps``);
``--lr`` is then unused. ``--top_trace=CLASS`` (implies ``--fresh``: the top level draws one more channel
and the coarse level sees it) sets ``hier.top_trace`` (``data.coarse.trace``): the top maps are drawn with
their trace channel and the output file records the key (``models.load`` reads it back):
  python tools/coarse_more_steps.py --model=fm_city_hier3 --top_trace=water --steps=5000 \
    --top_num_train=1200 --output=runs/fm_city_hier3_trace.npz

``--coarse_window=N`` sets ``hier.coarse_window``: the coarse level alone (the top level is kept: its maps do
not change) trains on N-px coarse maps, random crops (at whole top blocks) of ``--coarse_num_train`` coarse maps
of 2N px (regions of 2N x factor world pixels, drawn once into ``--data_dir``), at ``--batch`` maps a step; the
held-out loss is over the four N-px quarters of the test maps, for the weights before (the shipped coarse level,
fully convolutional, on the wider maps) and after. The output file records the key, so the tools that read it
(``tools/hier_levels.py --weights``, ``tools/large_spread.py --weights``) sample with N-px coarse windows:
  python tools/coarse_more_steps.py --model=fm_city_hier3 --coarse_window=64 --coarse_num_train=640 \
    --batch=16 --steps=3000 --output=runs/fm_city_hier3_cw64.npz

``--coarse_widths=W1,W2,...`` sets ``hier.coarse_widths`` (and ``hier.top_widths`` to the shipped ones, so the
top level is kept): a coarse U-Net of another size, from the config's initialisation (implies ``--fresh``),
trained alone on the config's coarse maps (or with ``--coarse_window``, its wider ones).
"""

import os
import sys
import time

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_MODEL = flags.DEFINE_string("model", "fm_city_hier", "A shipped hierarchical model (two or three levels).")
_STEPS = flags.DEFINE_integer("steps", 3000, "Steps of the levels above the fine one.")
_LR = flags.DEFINE_float("lr", 5e-4, "Peak learning rate (cosine decay to 0 after 200 warmup steps).")
_OUT = flags.DEFINE_string("output", "", "Where the parameters go (.npz).")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the batches and the noise (0: the first measured run's).")
_TOP_N = flags.DEFINE_integer(
  "top_num_train", 0, "Three levels: top maps to train on (0: the config's hier.top_num_train; more are drawn once)."
)
_DATA = flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "Where the coarse-map files are.")
_FRESH = flags.DEFINE_bool("fresh", False, "Upper levels from the config's initialisation and optimiser.")
_TRACE = flags.DEFINE_string("top_trace", "", "Three levels: hier.top_trace (a label class; implies --fresh).")
_WINDOW = flags.DEFINE_integer("coarse_window", 0, "hier.coarse_window: the coarse level alone on maps this wide.")
_COARSE_N = flags.DEFINE_integer("coarse_num_train", 0, "With --coarse_window: coarse maps of twice its size drawn.")
_BATCH = flags.DEFINE_integer("batch", 0, "Maps per step (0: the config's train.batch_size).")
_WIDTHS = flags.DEFINE_list("coarse_widths", [], "Three levels: hier.coarse_widths (implies --fresh; top kept).")


def main(argv):
  del argv
  import json

  import jax
  import jax.numpy as jnp
  import optax

  from genenv_jax import families, models
  from genenv_jax.data import coarse as coarse_lib
  from genenv_jax.families import flow_matching as fm
  from genenv_jax.families import flow_matching_hier as fm_hier
  from genenv_jax.families import optim

  if not _OUT.value.endswith(".npz"):
    print("error: --output must name an .npz file", file=sys.stderr)
    return 2
  model = models.load(_MODEL.value)
  cfg, hr = model.config, model.family.extras["hier"]
  C, tops = hr.channels, hr.top is not None
  fresh, overrides = _FRESH.value or bool(_TRACE.value) or bool(_WIDTHS.value), {}
  if _TRACE.value:
    overrides["hier.top_trace"] = _TRACE.value
  if _WIDTHS.value:
    try:
      widths = [int(w) for w in _WIDTHS.value]
    except ValueError:
      widths = None
    if not tops or _TRACE.value or not widths:
      print(
        f"error: --coarse_widths={','.join(_WIDTHS.value)}: integers, for a three-level model, no --top_trace",
        file=sys.stderr,
      )
      return 2
    overrides["hier.coarse_widths"] = widths
    overrides["hier.top_widths"] = list(cfg.hier.get("top_widths", ())) or list(cfg.hier.coarse_widths)
  if _BATCH.value < 0:
    print(f"error: --batch={_BATCH.value}: a positive count (0: the config's train.batch_size)", file=sys.stderr)
    return 2
  if _WINDOW.value:
    overrides["hier.coarse_window"] = _WINDOW.value
    if _TRACE.value or not _COARSE_N.value > 0:
      print("error: --coarse_window: give --coarse_num_train > 0, and no --top_trace", file=sys.stderr)
      return 2
  if overrides:
    cfg = cfg.copy_and_resolve_references()
    for k, v in overrides.items():
      cfg.hier[k.split(".")[1]] = tuple(v) if isinstance(v, list) else v
    try:
      family = families.make(cfg, model.spec)
    except ValueError as e:
      print(f"error: {' '.join(f'--{k[5:]}={v!r}' for k, v in overrides.items())}: {e}", file=sys.stderr)
      return 2
    hr = family.extras["hier"]
  else:
    family = model.family

  def maps(factor, counts, traced=None, size=None):  # drawn once into --data_dir where training has not drawn them
    size = size or model.spec.image_size
    return {
      split: coarse_lib.emphasize(
        coarse_lib.prepare(cfg.data.world, factor, size, n, split, _DATA.value, tuple(cfg.data.channels), 0, traced)[
          0
        ].astype(np.float32),
        hr.one_hot,
        hr.share_power,
      )
      for split, n in zip(("train", "test"), counts)
    }

  top_n = _TOP_N.value or (cfg.hier.get("top_num_train", 0) if tops else 0)
  if _TOP_N.value and (not tops or _TOP_N.value < 1):
    print(f"error: --top_num_train={_TOP_N.value}: for a three-level model, a positive count", file=sys.stderr)
    return 2
  window = _WINDOW.value
  coarse_alone = bool(window or _WIDTHS.value)  # the top level kept: its maps and network do not change
  if window:  # 2N-px maps: random N-px crops in training, the four quarters held out
    big = maps(hr.factor, (_COARSE_N.value, cfg.hier.coarse_num_test // 4), size=2 * window)
    t = big["test"]
    quarters = [t[:, i : i + window, j : j + window] for i in (0, window) for j in (0, window)]
    files = {"coarse": {"train": big["train"], "test": np.concatenate(quarters)}}
  else:
    files = {"coarse": maps(hr.factor, (cfg.hier.coarse_num_train, cfg.hier.coarse_num_test))}
  if tops and not coarse_alone:  # with --coarse_window or --coarse_widths the top level is kept as it is
    files["top"] = maps(hr.top_factor, (top_n, cfg.hier.top_num_test), hr.traced)
  batch = _BATCH.value or cfg.train.batch_size
  align = hr.top_factor // hr.factor if tops else 1  # crops at whole top blocks: the top map under them is real's

  def train_maps(name, f):
    idx = rng.integers(0, len(f["train"]), batch)
    if not window or name != "coarse":
      return f["train"][idx]
    ys, xs = (rng.integers(0, window // align + 1, batch) * align for _ in range(2))
    return np.stack([f["train"][i, y : y + window, x : x + window] for i, y, x in zip(idx, ys, xs)])

  if fresh:  # the config's optimiser over these steps
    tx = optim.make(cfg.optim, cfg.optim.lr, _STEPS.value, 0)
    x0 = np.zeros((2, model.spec.image_size, model.spec.image_size, C), np.float32)
    init = family.init(jax.random.PRNGKey(_SEED.value), {"x": x0, "label": np.zeros((2,), np.int32)}).params
    kept = ("fine", "top") if coarse_alone else ("fine",)  # the coarse level trains alone
    params = {k: jax.tree.map(jnp.asarray, model.params[k]) if k in kept else v for k, v in init.items()}
  else:
    sched = optax.warmup_cosine_decay_schedule(0.0, _LR.value, 200, max(_STEPS.value, 201))
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))
    params = jax.tree.map(jnp.asarray, model.params)
  upper = {k: params[k] for k in (("coarse",) if coarse_alone else ("coarse", "top")) if k in params}
  ts = cfg.fm.time_sampling
  ratio = hr.top_factor // hr.factor
  noise, block_noise = float(cfg.hier.cond_noise), float(cfg.hier.get("cond_noise_blocks", 0.0))

  def losses(u, key, xs):
    p = {**params, **u}
    label = jnp.zeros((xs["coarse"].shape[0],), jnp.int32)
    if not tops:  # two levels: the coarse level alone, unconditioned
      v = lambda xt, t: hr.coarse.velocity(p, xt, t, label)  # noqa: E731
      return {"coarse": fm.cfm_loss(v, key, xs["coarse"], ts)}
    kc, kn, kt = jax.random.split(key, 3)
    cond = fm_hier.condition(kn, xs["coarse"], ratio, hr.one_hot, hr.share_power, noise, block_noise, hr.traced)
    vc = lambda xt, t: hr.coarse.velocity(p, jnp.concatenate([xt, cond], -1), t, label)[..., :C]  # noqa: E731
    vt = lambda xt, t: hr.top.velocity(p, xt, t, label)  # noqa: E731
    out = {"coarse": fm.cfm_loss(vc, kc, xs["coarse"], ts)}
    return {**out, "top": fm.cfm_loss(vt, kt, xs["top"], ts)} if "top" in xs else out

  def loss_of(u, key, xs):
    ls = losses(u, key, xs)
    return sum(ls.values()), ls

  @jax.jit
  def step(u, ema, opt, key, xs):
    (loss, ls), g = jax.value_and_grad(loss_of, has_aux=True)(u, key, xs)
    upd, opt = tx.update(g, opt, u)
    u = optax.apply_updates(u, upd)
    ema = jax.tree.map(lambda e, q: cfg.fm.ema_decay * e + (1 - cfg.fm.ema_decay) * q, ema, u)
    return u, ema, opt, ls

  held = jax.jit(losses)

  def test_losses(u):
    keys = jax.random.split(jax.random.PRNGKey(7), 8)
    got = []
    for i, k in enumerate(keys):
      xs = {name: jnp.asarray(f["test"][(i * 32) % len(f["test"]) :][:32]) for name, f in files.items()}
      got.append({name: float(v) for name, v in held(u, k, xs).items()})
    return ", ".join(f"{name} {np.mean([g[name] for g in got]):.4f}" for name in got[0])

  print(f"held-out losses, {'initial' if fresh else 'shipped'}: {test_losses(upper)}", flush=True)
  opt, ema = tx.init(upper), upper
  rng = np.random.default_rng(_SEED.value)
  key = jax.random.PRNGKey(1 + _SEED.value)
  t0 = time.time()
  for i in range(_STEPS.value):
    xs = {name: jnp.asarray(train_maps(name, f)) for name, f in files.items()}
    upper, ema, opt, ls = step(upper, ema, opt, jax.random.fold_in(key, i), xs)
    if (i + 1) % 250 == 0:
      shown = ", ".join(f"{name} {float(v):.4f}" for name, v in ls.items())
      print(f"step {i + 1}: train losses {shown} ({time.time() - t0:.0f} s)", flush=True)
  print(f"held-out losses after {_STEPS.value} upper-level steps (EMA): {test_losses(ema)}", flush=True)
  extra = {models.CONFIG_KEY: np.array(json.dumps(overrides))} if overrides else {}
  np.savez(_OUT.value, **models.arrays_of({**params, **ema}), **extra)


if __name__ == "__main__":
  app.run(main)
