r"""An experiment: trains a shipped two-level model's coarse level alone for more steps, the fine level kept.

  python tools/coarse_more_steps.py --model=fm_city_hier --steps=3000 --output=runs/fm_city_hier_coarse3k.npz
  python tools/hier_levels.py --model=fm_city_hier --weights=runs/fm_city_hier_coarse3k.npz

``tools/hier_levels.py`` shows where a two-level model loses its large
structures; for the city it is the coarse level (the fine level over real
coarse maps draws rivers and lakes). This asks whether the coarse level was
only short of training: it starts from the shipped weights (the EMA ones),
trains ``params['coarse']`` on the same coarse maps the :cpu config trains on
(the coarse-map file beside the TFDS data; ``--data_dir``), with the
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
"""

import os
import sys
import time

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_MODEL = flags.DEFINE_string("model", "fm_city_hier", "A shipped two-level model.")
_STEPS = flags.DEFINE_integer("steps", 3000, "Coarse-only steps.")
_LR = flags.DEFINE_float("lr", 5e-4, "Peak learning rate (cosine decay to 0 after 200 warmup steps).")
_OUT = flags.DEFINE_string("output", "", "Where the parameters go (.npz).")
_DATA = flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "Where the coarse-map files are.")


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import optax

  from genenv_jax import models
  from genenv_jax.data import coarse as coarse_lib
  from genenv_jax.families import flow_matching as fm

  if not _OUT.value.endswith(".npz"):
    print("error: --output must name an .npz file", file=sys.stderr)
    return 2
  model = models.load(_MODEL.value)
  cfg, hr = model.config, model.family.extras["hier"]
  files = {}
  for split, n in (("train", cfg.hier.coarse_num_train), ("test", cfg.hier.coarse_num_test)):
    path = coarse_lib.coarse_path(
      _DATA.value, cfg.data.world, hr.factor, model.spec.image_size, n, split, tuple(cfg.data.channels)
    )
    if not os.path.exists(path):
      print(f"error: {path}: no coarse maps (train {_MODEL.value}'s config once to draw them)", file=sys.stderr)
      return 2
    files[split] = coarse_lib.emphasize(np.load(path)["x"].astype(np.float32), hr.one_hot, hr.share_power)
  batch = cfg.train.batch_size
  sched = optax.warmup_cosine_decay_schedule(0.0, _LR.value, 200, max(_STEPS.value, 201))
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))
  params = jax.tree.map(jnp.asarray, model.params)
  coarse = params["coarse"]
  ts = cfg.fm.time_sampling

  def loss_of(c, key, x):
    v = lambda xt, t: hr.coarse.velocity({**params, "coarse": c}, xt, t, jnp.zeros((x.shape[0],), jnp.int32))  # noqa: E731
    return fm.cfm_loss(v, key, x, ts)

  @jax.jit
  def step(c, ema, opt, key, x):
    loss, g = jax.value_and_grad(loss_of)(c, key, x)
    upd, opt = tx.update(g, opt, c)
    c = optax.apply_updates(c, upd)
    ema = jax.tree.map(lambda e, p: cfg.fm.ema_decay * e + (1 - cfg.fm.ema_decay) * p, ema, c)
    return c, ema, opt, loss

  held = jax.jit(lambda c, key, x: loss_of(c, key, x))

  def test_loss(c):
    keys = jax.random.split(jax.random.PRNGKey(7), 8)
    return float(np.mean([held(c, k, jnp.asarray(files["test"][i * 32 : (i + 1) * 32])) for i, k in enumerate(keys)]))

  print(f"held-out coarse loss, shipped: {test_loss(coarse):.4f}", flush=True)
  opt, ema = tx.init(coarse), coarse
  rng = np.random.default_rng(0)
  key = jax.random.PRNGKey(1)
  t0 = time.time()
  for i in range(_STEPS.value):
    x = jnp.asarray(files["train"][rng.integers(0, len(files["train"]), batch)])
    coarse, ema, opt, loss = step(coarse, ema, opt, jax.random.fold_in(key, i), x)
    if (i + 1) % 250 == 0:
      print(f"step {i + 1}: train loss {float(loss):.4f} ({time.time() - t0:.0f} s)", flush=True)
  print(f"held-out coarse loss after {_STEPS.value} coarse steps (EMA): {test_loss(ema):.4f}", flush=True)
  np.savez(_OUT.value, **models.arrays_of({**params, "coarse": ema}))


if __name__ == "__main__":
  app.run(main)
