r"""An experiment (#25): a coarse level that draws a signed river field beside its map. Does it join rivers?

  python tools/coarse_field.py --field=derived --output=runs/coarse_field_derived.npz
  python tools/coarse_field.py --field=oracle --output=runs/coarse_field_oracle.npz

The city's coarse level draws rivers as one-block shares, in fragments; a continuous field's zero set has no
loose ends. This trains, fresh, a coarse U-Net of ``fm_city_hier3``'s widths that draws the coarse map's C
channels plus one: the river field's block mean, from

* ``--field=derived``: ``data.river_field.signed_field`` of each region's labels (what a user's label maps
  give), or
* ``--field=oracle``: the world's own river field (``city_regions`` draws rivers where a smooth field is
  within 0.02 of 0.5; that field minus 0.5, over 0.1, clipped): the upper bound,

on ``--num_train`` coarse maps of ``fm_city_hier3``'s size (256-px regions at factor 8; seeds from
``data.coarse.COARSE_SEED``, the held-out 256 from ``COARSE_SEED + 10**5``), conditioned on the map pooled to
the top level's scale (``flow_matching_hier.condition``) with the config's optimiser, batch, EMA and loss, for
``--steps``. Then it draws ``--num_samples`` coarse canvases of ``--scene_size`` under the shipped top level
(``canvas.top_under``, the coarse noise of ``canvas.coarse_canvas`` in the first C channels) and reads, as
``tools/hier_levels.py --coarse_only`` does, the largest joined water (4-connected blocks at least 1/8 water)
twice: from the shares alone, and with the blocks where the field changes sign (``river_field.crossings``)
counted as water; real regions (``tools/hier_levels.py``'s seeds) are read the same way with their own field.
``--picture=FILE.png``: the first 3 maps, real and model joined water (largest region red) and their fields.
An existing ``--output`` is read, not trained again. The fine level never sees the field here: this measures
the coarse level alone.

``--model_weights=FILE.npz`` (``--field=derived``) writes the shipped ``fm_city_hier3``'s parameters with this
coarse level in place of its own and ``hier.coarse_field='water'`` and ``hier.river_share`` (``--river_share``)
recorded (``models.CONFIG_KEY``): the
network ``flow_matching_hier`` builds for that key (the coarse level trained here is the one the family's
coarse-only steps train: the same loss, conditioning and channels), which ``models.load('fm_city_hier3',
weights=FILE)``, ``tools/large_scenes.py --weights`` and ``tools/hier_levels.py --weights`` read, the rivers
carved into the map the fine level sees (``river_field.carve``; ``runs/fm_city_hier3_field.npz`` was the same with
``--river_share=0.25``):
  python tools/coarse_field.py --field=derived --output=runs/coarse_field_derived.npz \
    --model_weights=runs/fm_city_hier3_field05.npz --river_share=0.5 --num_samples=0
  python tools/large_scenes.py --model=fm_city_hier3 --weights=runs/fm_city_hier3_field05.npz \
    --scene_size=1024x1024 --num_samples=5 --fine_temperature=0.4 --min_water_blocks=5
A second training run of the coarse level: ``--seed=1`` with another ``--output`` (the maps drawn are the same).
"""

import json
import os
import sys
import time

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_FIELD = flags.DEFINE_enum("field", "derived", ["derived", "oracle"], "Where the river field comes from.")
_OUT = flags.DEFINE_string("output", "", "The coarse level's parameters (.npz): trained here if missing.")
_STEPS = flags.DEFINE_integer("steps", 4000, "Training steps.")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 3000, "Coarse maps to train on.")
_NUM = flags.DEFINE_integer("num_samples", 10, "Scenes read (and real regions).")
_SIZE = flags.DEFINE_string("scene_size", "1024x1024", "HxW of the scenes read.")
_JSON = flags.DEFINE_string("json", "", "Write the readings here.")
_PICTURE = flags.DEFINE_string("picture", "", "Write the first 3 maps' joined water and fields here (.png).")
_MODEL_WEIGHTS = flags.DEFINE_string(
  "model_weights", "", "Write fm_city_hier3's whole parameter tree with this coarse level here (.npz, --field=derived)."
)
_SEED = flags.DEFINE_integer(
  "seed", 0, "Training seed (the network's initialisation and batches; the maps drawn are the same): a second run."
)
_SHARE = flags.DEFINE_float("river_share", 0.5, "With --model_weights: hier.river_share recorded in the file.")
MODEL = "fm_city_hier3"
ORACLE_SCALE = 0.1
READ_SEED = 5 * 10**6  # tools/hier_levels.py's real regions


def oracle_field(seed, h, w):
  """city_regions' own river field over rows 0..h, columns 0..w of world ``seed`` (rivers: |field| < 0.02)."""
  from genenv_jax.scenes import city_regions, fields

  ys, xs = np.arange(h, dtype=np.int64), np.arange(w, dtype=np.int64)
  if fields.uniform(int(seed), city_regions._T_ORIENT, 0) < 0.5:  # drawn transposed (city_regions.region)
    return (fields.fbm(int(seed), city_regions._T_RIVER, xs, ys, 96.0, 2) - 0.5).T
  return fields.fbm(int(seed), city_regions._T_RIVER, ys, xs, 96.0, 2) - 0.5


def map_with_field(world, lay, seed, h, w, f, kind):
  """A region's coarse map (plain block means by ``f``) with the river field's block mean as one more channel."""
  from genenv_jax.data import coarse, river_field

  sc = world.region(seed, 0, 0, h, w)
  x = coarse.downsample(lay.encode(coarse._record(sc))[0].astype(np.float32), f)
  if kind == "oracle":
    fld = np.clip(oracle_field(seed, h, w) / ORACLE_SCALE, -1, 1)
  else:
    fld = river_field.signed_field(sc.labels, world.class_names, seed=seed)[0]
  return np.concatenate([x, coarse.downsample(fld[..., None], f)], -1)


def _draw(args):
  seeds, size, channels, f, kind = args
  from genenv_jax import layout as layout_lib
  from genenv_jax.scenes import get_world

  world = get_world("city_regions")
  lay = layout_lib.Layout.for_data(channels, world)
  return np.stack([map_with_field(world, lay, s, size, size, f, kind).astype(np.float16) for s in seeds])


def draw(first, n, size, channels, f, kind):
  import concurrent.futures as cf
  import multiprocessing

  parts = [list(range(first + i, first + min(i + 50, n))) for i in range(0, n, 50)]
  ctx = multiprocessing.get_context("spawn")  # numpy only in the workers
  with cf.ProcessPoolExecutor(max(1, min(os.cpu_count() or 1, 8)), mp_context=ctx) as ex:
    return np.concatenate(list(ex.map(_draw, [(p, size, channels, f, kind) for p in parts]))).astype(np.float32)


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import optax
  from flax import traverse_util

  from genenv_jax import canvas, models, parallel, tiling
  from genenv_jax.data import coarse, river_field
  from genenv_jax.families import base, optim
  from genenv_jax.families import flow_matching as fm
  from genenv_jax.families import flow_matching_hier as fm_hier
  from genenv_jax.metrics import multiscale
  from genenv_jax.nets import unet

  if not _OUT.value.endswith(".npz"):
    print("error: --output must name an .npz file", file=sys.stderr)
    return 2
  if not 0 <= _SEED.value < 2**32:
    print(f"error: --seed={_SEED.value}: a training seed from 0 to 2**32 - 1", file=sys.stderr)
    return 2
  model = models.load(MODEL)
  cfg, hr = model.config, model.family.extras["hier"]
  C, f, S, CT = hr.channels, hr.factor, model.spec.image_size, hr.top.channels
  ratio, channels = hr.top_factor // f, tuple(cfg.data.channels)
  net = unet.UNet(C + 1, tuple(cfg.hier.coarse_widths), cfg.fm.blocks, False, model.spec.num_classes)
  if not os.path.exists(_OUT.value):
    t0 = time.time()
    test = draw(coarse.COARSE_SEED + 10**5, 256, S * f, channels, f, _FIELD.value)
    train = draw(coarse.COARSE_SEED, _NUM_TRAIN.value, S * f, channels, f, _FIELD.value)
    print(f"{len(train)} + {len(test)} coarse maps with the {_FIELD.value} field drawn ({time.time() - t0:.0f} s)")
    tx = optim.make(cfg.optim, cfg.optim.lr, _STEPS.value, 0)
    lab0 = jnp.zeros((2,), jnp.int32)
    params = net.init(jax.random.PRNGKey(_SEED.value), jnp.zeros((2, S, S, 2 * C + 1)), jnp.zeros((2,)), lab0)

    def loss(p, key, x):
      kc, kn = jax.random.split(key)
      cond = fm_hier.condition(kn, x[..., :C], ratio, hr.one_hot, hr.share_power, float(cfg.hier.cond_noise))
      lab = jnp.zeros((x.shape[0],), jnp.int32)
      return fm.cfm_loss(
        lambda xt, t: net.apply(p, jnp.concatenate([xt, cond], -1), t, lab), kc, x, cfg.fm.time_sampling
      )

    @jax.jit
    def step(p, ema, opt, key, x):
      ls, g = jax.value_and_grad(loss)(p, key, x)
      upd, opt = tx.update(g, opt, p)
      p = optax.apply_updates(p, upd)
      return p, jax.tree.map(lambda e, q: cfg.fm.ema_decay * e + (1 - cfg.fm.ema_decay) * q, ema, p), opt, ls

    held = jax.jit(loss)

    def test_loss(p):
      return np.mean(
        [float(held(p, jax.random.PRNGKey(7 + i), jnp.asarray(test[i * 32 : (i + 1) * 32]))) for i in range(8)]
      )

    print(f"held-out loss, initial: {test_loss(params):.4f}", flush=True)
    opt, ema = tx.init(params), params
    key = jax.random.PRNGKey(1)  # seed 0: the first run's keys, bit for bit
    key = jax.random.fold_in(key, _SEED.value) if _SEED.value else key
    rng, t0 = np.random.default_rng(_SEED.value), time.time()
    for i in range(_STEPS.value):
      x = jnp.asarray(train[rng.integers(0, len(train), cfg.train.batch_size)])
      params, ema, opt, ls = step(params, ema, opt, jax.random.fold_in(key, i), x)
      if (i + 1) % 250 == 0:
        print(f"step {i + 1}: loss {float(ls):.4f} ({time.time() - t0:.0f} s)", flush=True)
    print(f"held-out loss after {_STEPS.value} steps (EMA): {test_loss(ema):.4f}", flush=True)
    np.savez(_OUT.value, **models.arrays_of({"coarse": ema}))
  with np.load(_OUT.value) as z:
    p = jax.tree.map(jnp.asarray, traverse_util.unflatten_dict({k: z[k] for k in z.files}, sep="/"))["coarse"]
  if _MODEL_WEIGHTS.value:
    if _FIELD.value != "derived" or not _MODEL_WEIGHTS.value.endswith(".npz"):
      print(
        "error: --model_weights: an .npz file, for --field=derived (a model has no world's own field)", file=sys.stderr
      )
      return 2
    tree = models.arrays_of({**jax.device_get(model.params), "coarse": p})
    keys = {"hier.coarse_field": "water", "hier.river_share": river_field.check_share(_SHARE.value, "--river_share")}
    tree[models.CONFIG_KEY] = np.array(json.dumps(keys))
    np.savez(_MODEL_WEIGHTS.value, **tree)
    check = models.load(MODEL, weights=_MODEL_WEIGHTS.value)  # the family builds the network these fit
    h = check.config.hier
    print(f"wrote {_MODEL_WEIGHTS.value}: {MODEL} with this coarse level ({h.coarse_field=}, {h.river_share=})")
  if not _NUM.value:
    return 0

  def velocity(params, x, t, label):  # the top map rides along with zero velocity
    v = net.apply(params, x, t, label)
    return jnp.concatenate([v, jnp.zeros(v.shape[:-1] + (CT,), v.dtype)], -1)

  finalize = lambda x: jnp.clip(jnp.nan_to_num(x[..., : C + 1]), -1.0, 1.0)  # noqa: E731
  cv = base.Canvas(velocity, hr.coarse.window, C + 1 + CT, False, finalize, hr.coarse.solver, hr.coarse.steps)
  h, w = tiling.parse_size(_SIZE.value)
  pl = canvas.plan(h, w, S)
  ch, cw = -(-pl.height // f), -(-pl.width // f)
  cpl = canvas.plan(ch, cw, hr.coarse.window)
  mesh = parallel.local_mesh()
  render, _ = canvas.renderer_of(cv, ch, cw, hr.coarse.window, mesh=mesh)
  names, lay = model.world.class_names, model.layout
  wi = lay.one_hot[0] + list(names).index("water")

  def joined(mask):
    return float(multiscale.component_sizes(mask).max(initial=0) / mask.size)

  rows, shown = {"real": [], "model": []}, []
  for i in range(_NUM.value):
    xr = map_with_field(model.world, lay, READ_SEED + i, ch * f, cw * f, f, _FIELD.value)
    top = canvas.top_under(model, cpl, i, 1.0, jnp.int32(0), mesh)
    noise = hr.upper_temperature * canvas.initial_noise(i, 0, 0, cpl.height, cpl.width, C + 1, tag=canvas.COARSE_TAG)
    xm = np.asarray(render(p, jnp.concatenate([jnp.asarray(noise), top], -1), jnp.int32(0)))[:ch, :cw]
    pair = []
    for name, x in (("real", xr), ("model", xm)):
      x = x[: -(-h // f), : -(-w // f)]
      share = (np.clip(x[..., wi], -1, 1) + 1) / 2 >= 1.0 / f - 1e-6
      cross = river_field.crossings(x[..., C])
      rows[name].append(
        {
          "joined_shares": joined(share),
          "joined_with_field": joined(share | cross),
          "crossing_blocks": float(cross.mean()),
        }
      )
      pair.append((share | cross, x[..., C]))
    shown.append(pair)
    print(f"scene {i}: real {rows['real'][-1]}, model {rows['model'][-1]}", flush=True)
  summary = {k: {q: float(np.mean([r[q] for r in v])) for q in v[0]} for k, v in rows.items()}
  for k, v in summary.items():
    print(k, ", ".join(f"{q} {x:.3f}" for q, x in v.items()))
  if _JSON.value:
    with open(_JSON.value, "w") as fh:
      json.dump({"field": _FIELD.value, "weights": os.path.basename(_OUT.value), "scene_size": _SIZE.value,
                 "mean": summary, "per_scene": rows}, fh, indent=1)  # fmt: skip
  if _PICTURE.value:
    from PIL import Image
    from scipy import ndimage

    def paint(mask):
      ids, _ = ndimage.label(mask, ndimage.generate_binary_structure(2, 1))
      sizes = np.bincount(ids.ravel())
      sizes[0] = 0
      img = np.full(mask.shape + (3,), 255, np.uint8)
      img[mask] = (110, 150, 230)
      if sizes.max():
        img[ids == sizes.argmax()] = (200, 40, 40)
      return img

    def gray(fld):
      return np.repeat(((np.clip(fld, -1, 1) + 1) * 127.5).astype(np.uint8)[..., None], 3, -1)

    def spaced(panels, axis):  # 3 px of white between panels (8 once zoomed)
      gap = np.full(tuple(3 if a == axis else n for a, n in enumerate(panels[0].shape)), 255, np.uint8)
      return np.concatenate(sum(([p, gap] for p in panels), [])[:-1], axis)

    rows_img = [spaced([paint(a[0]), paint(b[0]), gray(a[1]), gray(b[1])], 1) for a, b in shown[:3]]
    Image.fromarray(spaced(rows_img, 0).repeat(3, 0).repeat(3, 1)).save(_PICTURE.value)


if __name__ == "__main__":
  app.run(main)
