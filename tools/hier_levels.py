r"""Reads a two-level model's levels apart: is a large structure lost by the coarse level or by the fine one?

  python tools/hier_levels.py --model=fm_city_hier --scene_size=1024x1024 --num_samples=3

For real regions R_i of the world (seeds ``SEED + i``, away from training and
from ``large_eval``'s sets), prints and writes (``--json``) the large
structures of ``metrics.multiscale`` (water bodies with bridges, the largest
body's share, the road network) for four sets of whole scenes:

* ``real``: R_i themselves;
* ``fine on real coarse``: the fine level alone, drawn over R_i's own coarse
  map (its block means, what the fine level is trained on), so every large
  structure is handed to it;
* ``two-level``: the model's own scenes, seeds 0.. (coarse canvas, then
  fine; the scenes ``tools/large_scenes.py`` caches are read back when
  present);
and at the coarse level (each ``factor x factor`` block labelled by its
largest class share, or water where a quarter of it is water, at the
scene's size):

* ``real coarse`` against ``model coarse``: R_i's coarse maps against the
  coarse canvases the model draws;
* ``coarse on real top`` (three-level models): the coarse level alone over
  R_i's own top map (its block means by ``top_factor``), so the top level's
  layout is handed to it: near ``real coarse``, the top level is what loses
  the structure; near ``model coarse``, the coarse level does.

The coarse sets' log-area distance is to ``real coarse``, read the same way;
their ``largest_joined_water`` is the largest connected region of blocks at
least 1/factor water (a 1-px river across a block) as a share of the map:
the lakes with the rivers that join them, which the block labels cut apart
(real city regions: about the fine scene's largest water body);
``--joined_picture=FILE.png`` draws it for the first 3 maps, real beside the
model's coarse canvas.
``--coarse_only`` reads only the coarse sets (no fine scene is drawn: seconds
a scene, so many scenes at 1024 are cheap).

Beside them: water specks (bodies of at most ``SPECK`` pixels) per megapixel,
the water bodies' log-area distance to ``real`` (Wasserstein, as ``large_eval``'s
``water_log_areas_w1``), and for the fine level over real coarse maps the pieces it cuts each
region's largest water body into (its water bodies that meet the real one).
``--cut_picture=FILE.png`` writes where most of the first region's largest
body is land in the fine scene: real beside the fine level over its coarse
map, labels and colours.

The road columns of the two coarse rows mean nothing (a block repeated up
is always "wide"); read only their water columns.

If the fine level on real coarse maps is near real, the coarse level is what
loses the structure; if not, the fine level does. ``--coarse_noise=S`` adds
Gaussian noise of std S per coarse pixel (every channel, clipped to [-1, 1];
draw i from ``numpy.random.default_rng(i)``) to the real coarse maps first: how
fragile the fine level is to a drawn map's blockwise errors.
``--fine_temperature=T`` samples the fine level colder (``sample.py
--fine_temperature``), in both sets it draws; ``--upper_temperature=T`` samples
the coarse and top levels at T (``sample.py --upper_temperature``; the
model's own sets only, and with ``--coarse_only`` too); ``--top_temperature=T``
(three levels) samples the top level alone at T (``sample.py
--top_temperature``). Each fine scene of
1024x1024 is ~7 minutes on a 2-core CPU; they are kept in ``--cache_dir``
(the fine scenes over real coarse maps keyed by the fine level's weights, so
``--weights`` with another coarse level reuses them). ``--workdir=W`` reads a
trained run (an experiment in ``runs/``) instead of a shipped model.
"""

import json
import os
import sys

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_MODEL = flags.DEFINE_string("model", "fm_city_hier", "A shipped two-level model.")
_SIZE = flags.DEFINE_string("scene_size", "1024x1024", "HxW of the whole scenes.")
_NUM = flags.DEFINE_integer("num_samples", 3, "Scenes per set.")
_JSON = flags.DEFINE_string("json", "", "Write the figures here.")
_CACHE = flags.DEFINE_string("cache_dir", os.path.join(ROOT, "runs", "hier_levels_cache"), "Scenes kept here.")
_PICTURE = flags.DEFINE_string("picture", "", "Write a picture of the first scene of each set here (.png).")
_WORKDIR = flags.DEFINE_string("workdir", "", "A trained workdir instead of --model (e.g. an experiment in runs/).")
_WEIGHTS = flags.DEFINE_string("weights", "", "Parameters to use instead (.npz of tools/coarse_more_steps.py).")
_CUT = flags.DEFINE_string("cut_picture", "", "Write where the fine level cuts real's largest water body (.png).")
_JOINED_PIC = flags.DEFINE_string(
  "joined_picture", "", "Write the joined water of the first 3 coarse maps, real beside the model's (.png)."
)
_COARSE_NOISE = flags.DEFINE_float("coarse_noise", 0.0, "Std of noise per coarse pixel on the real coarse maps.")
_FINE_TEMP = flags.DEFINE_float("fine_temperature", None, "The fine level's noise scale (sample.py's flag).")
_UPPER_TEMP = flags.DEFINE_float(
  "upper_temperature", None, "The coarse and top levels' noise scale (sample.py's flag)."
)
_TOP_TEMP = flags.DEFINE_float(
  "top_temperature", None, "A three-level model's top level's noise scale (sample.py's flag)."
)
_COARSE_ONLY = flags.DEFINE_boolean(
  "coarse_only", False, "Only the coarse-level sets (no fine scene is drawn: seconds a scene, not minutes)."
)
SEED = 5 * 10**6
KEYS = ("water_bodies_per_mpx", "largest_water_share", "road_largest_share", "road_wide_share")
W1 = "water_log_areas_w1"
JOINED = "largest_joined_water"  # coarse sets: lakes with the rivers that join them (joined_water)
SPECK = 4  # pixels: a water body this small is a speck (real city regions have none)


def water_bodies(labels, names):
  """[h, w] component ids of water (bridges counted, as ``metrics.multiscale``) and their sizes."""
  from scipy import ndimage

  from genenv_jax.metrics import multiscale

  road = labels == names.index("road") if "road" in names else None
  ids, n = ndimage.label(multiscale.bridged_water(labels == names.index("water"), road))
  return ids, np.bincount(ids.ravel(), minlength=n + 1)[1:]


def pieces(real, other, names) -> tuple[int, np.ndarray]:
  """How many of ``other``'s water bodies meet ``real``'s largest one, and where real's largest is not water."""
  rid, rsize = water_bodies(real, names)
  oid, _ = water_bodies(other, names)
  big = rid == rsize.argmax() + 1
  return len(np.unique(oid[big & (oid > 0)])), big & (oid == 0)


def main(argv):
  del argv
  from genenv_jax import canvas, large_eval, models, tiling, trained
  from genenv_jax.data import coarse as coarse_lib
  from genenv_jax.metrics import multiscale

  if _WORKDIR.value:
    model = trained.load(_WORKDIR.value)
  else:
    model = models.load(_MODEL.value, weights=_WEIGHTS.value or None)
  temps = dict(fine_temperature=_FINE_TEMP.value, upper_temperature=_UPPER_TEMP.value, top_temperature=_TOP_TEMP.value)
  if any(t is not None for t in temps.values()):  # caches kept apart (large_eval.cache_key)
    model = trained.with_sampler(model, **temps)
  sigma = _COARSE_NOISE.value
  if not 0.0 <= sigma <= 1.0:
    raise ValueError(f"coarse_noise={sigma!r}: must be in [0, 1] (std of the noise per coarse pixel)")
  hr = model.family.extras["hier"]
  coarse_only = _COARSE_ONLY.value
  if coarse_only and (_PICTURE.value or _CUT.value or sigma or _FINE_TEMP.value is not None):
    raise ValueError(
      "--coarse_only draws no fine scene: leave out --picture, --cut_picture, --coarse_noise and --fine_temperature "
      "(they are about the fine level)"
    )
  f, S = hr.factor, hr.fine.window
  h, w = tiling.parse_size(_SIZE.value)
  pl = canvas.plan(h, w, S)
  ch, cw = -(-pl.height // f), -(-pl.width // f)
  world, names = model.world, model.world.class_names
  lay = model.layout
  lo, hi = lay.one_hot

  def stats(labels):
    rows = multiscale.evaluate(labels, None, names)
    out = {k: [float(r[k]) for r in rows] for k in KEYS}
    if "water" in names:
      out["water_specks_per_mpx"] = [float((water_bodies(x, names)[1] <= SPECK).sum() / x.size * 1e6) for x in labels]
    return out

  def coarse_labels(xc):
    """[n, ch, cw, C] -> [n, h, w] labels at the scene's size: each block's largest class share, or water where
    its water share is at least a quarter (a 2-4-px river is a quarter to a half of an 8-px block)."""
    plain = coarse_lib.repower(np.clip(np.asarray(xc), -1, 1), lay.one_hot, hr.share_power, 1.0)
    shares = (plain[..., lo:hi] + 1) / 2
    lab = shares.argmax(-1).astype(np.uint8)
    if "water" in names:
      lab[shares[..., names.index("water")] >= 0.25] = names.index("water")
    return lab.repeat(f, 1).repeat(f, 2)[:, :h, :w]

  def joined_blocks(xc):
    """[n, ch, cw, C] -> [n, h/f, w/f] water shares in [0, 1], cut to the scene."""
    plain = coarse_lib.repower(np.clip(np.asarray(xc), -1, 1), lay.one_hot, hr.share_power, 1.0)
    return (plain[:, : -(-h // f), : -(-w // f), lo + names.index("water")] + 1) / 2

  def joined_water(xc):
    """[n, ch, cw, C] -> per map, the largest connected region of blocks at least 1/f water (a 1-px river across a
    block), as a share of the map: lakes with the rivers that join them, which the labels above cut apart."""
    water = joined_blocks(xc) >= 1.0 / f - 1e-6
    return [float(multiscale.component_sizes(m).max(initial=0) / m.size) for m in water]

  def block_means(region, k):
    """A real region's map as the model's levels hold it: block means by ``k`` (in the share space)."""
    return coarse_lib.pool(lay.encode(coarse_lib._record(region))[0].astype(np.float32), k, lay.one_hot, hr.share_power)

  def log_area_w1(sets):
    """Each set's water log-area distance to the first (real)."""
    per = [[multiscale.scene_statistics(x, None, names) for x in labels] for labels in sets]
    return [multiscale.compare(per[0], p).get(W1, float("nan")) for p in per]

  real_lab, real_coarse, fine_lab, model_lab, model_coarse, fine_paths, on_top = [], [], [], [], [], [], []
  if hr.top is not None:  # the top map of a region under the coarse plan (as canvas.top_under draws one)
    tf, r = hr.top_factor, hr.top_factor // f
    cpl = canvas.plan(ch, cw, S)
    th, tw = -(-cpl.height // r), -(-cpl.width // r)
  # Fine scenes over real coarse maps depend on the fine level only; the model's own scenes on both.
  noised = f"-noise{sigma:g}" if sigma else ""
  cache = os.path.join(_CACHE.value, "fine-" + large_eval.cache_key(model, model.params["fine"]) + noised)
  own_cache = os.path.join(_CACHE.value, large_eval.cache_key(model))
  if not coarse_only:
    os.makedirs(cache, exist_ok=True)
  big_cache = os.path.join(ROOT, "runs", "large_scenes_cache", large_eval.cache_key(model))
  for i in range(_NUM.value):
    sc = world.region(SEED + i, 0, 0, ch * f, cw * f)
    real_lab.append(sc.labels[:h, :w])
    xc = block_means(sc, f)
    real_coarse.append(xc)
    if hr.top is not None:  # the coarse level alone over the region's own top map
      big = sc if (th * tf, tw * tf) == (ch * f, cw * f) else world.region(SEED + i, 0, 0, th * tf, tw * tf)
      xt = coarse_lib.top_map(block_means(big, f), r, lay.one_hot, hr.share_power, hr.traced)  # with its trace
      on_top.append(np.asarray(canvas.coarse_canvas(model, h, w, seed=i, top=xt)))
    model_coarse.append(np.asarray(canvas.coarse_canvas(model, h, w, seed=i)))
    if coarse_only:
      continue
    if sigma:  # a drawn map's errors are blockwise
      xc = np.clip(xc + sigma * np.random.default_rng(i).normal(size=xc.shape).astype(np.float32), -1, 1)
    path = os.path.join(cache, f"fine_on_real_{h}x{w}_seed{SEED + i}.npy")
    if not os.path.exists(path):
      x = canvas.render_hier(model, h, w, seed=i, coarse=xc)
      np.save(path + ".tmp.npy", x)
      os.replace(path + ".tmp.npy", path)
      print(f"fine on real coarse map {i + 1}/{_NUM.value} drawn", flush=True)
    fine_lab.append(lay.decode(np.load(path)[None])["labels"][0])
    fine_paths.append(path)
    # The model's whole scene (cached by large_scenes.py when present).
    mpath = os.path.join(big_cache, f"model_scenes_{h}x{w}_seed{i}.npy")
    if not os.path.exists(mpath):
      os.makedirs(own_cache, exist_ok=True)
      mpath = os.path.join(own_cache, f"two_level_{h}x{w}_seed{i}.npy")
      if not os.path.exists(mpath):
        np.save(mpath + ".tmp.npy", canvas.render_scene(model, h, w, seed=i))
        os.replace(mpath + ".tmp.npy", mpath)
        print(f"two-level scene {i + 1}/{_NUM.value} drawn", flush=True)
    model_lab.append(lay.decode(np.load(mpath)[None])["labels"][0])
  coarse_maps = {"real coarse": np.stack(real_coarse), "model coarse": np.stack(model_coarse)}
  if on_top:
    coarse_maps["coarse on real top"] = np.stack(on_top)
  coarse_sets = {k: coarse_labels(v) for k, v in coarse_maps.items()}
  out = {
    "command": " ".join(["python", "tools/hier_levels.py", *sys.argv[1:]]),
    "model": _WORKDIR.value or _MODEL.value,
    **({"weights": _WEIGHTS.value} if _WEIGHTS.value else {}),
    "scene_size": f"{h}x{w}",
    "factor": f,
    "real": stats(np.stack(real_lab)),
  }
  if not coarse_only:
    out["fine on real coarse"] = stats(np.stack(fine_lab))
  out.update({k: stats(v) for k, v in coarse_sets.items()})
  if "water" in names:  # the coarse sets' water log-areas against the real coarse maps read the same way
    for name, v in zip(coarse_sets, log_area_w1(list(coarse_sets.values()))):
      out[name][W1] = v
      out[name][JOINED] = joined_water(coarse_maps[name])
  if not coarse_only:
    out["two-level"] = stats(np.stack(model_lab))
  if "water" in names and not coarse_only:
    w1 = log_area_w1([real_lab, fine_lab, model_lab])
    for name, v in zip(("real", "fine on real coarse", "two-level"), w1):
      out[name][W1] = v
  out.update(coarse_noise=sigma, fine_temperature=1.0 if _FINE_TEMP.value is None else _FINE_TEMP.value)
  out["upper_temperature"] = 1.0 if _UPPER_TEMP.value is None else _UPPER_TEMP.value
  out["top_temperature"] = 1.0 if _TOP_TEMP.value is None else _TOP_TEMP.value
  if "water" in names and not coarse_only:
    out["fine on real coarse"]["pieces_of_real_largest"] = [pieces(r, x, names)[0] for r, x in zip(real_lab, fine_lab)]
  shown = (*KEYS, "water_specks_per_mpx", W1, JOINED)
  print(f"{'set':24s}" + "".join(f"{k:>24s}" for k in shown))
  for name, v in out.items():
    if isinstance(v, dict):
      print(f"{name:24s}" + "".join(f"{np.mean(v.get(k, np.nan)):24.4f}" for k in shown))
  if "pieces_of_real_largest" in out.get("fine on real coarse", {}):
    cut = out["fine on real coarse"]["pieces_of_real_largest"]
    print("pieces of each real largest water body, fine level over real coarse:", cut)
  if _CUT.value:
    cut_picture(_CUT.value, world, real_lab[0], fine_lab[0], lay.decode(np.load(fine_paths[0])[None])["rgb"][0])
  if _JOINED_PIC.value and "water" in names:
    maps = [joined_blocks(coarse_maps[k][:3]) for k in ("real coarse", "model coarse")]
    joined_picture(_JOINED_PIC.value, maps, 1.0 / f)
  if _PICTURE.value:
    picture(_PICTURE.value, world, lo + names.index("water") if "water" in names else lo, real_coarse[0],
            model_coarse[0], fine_lab[0], real_lab[0], model_lab[0])  # fmt: skip
  if _JSON.value:
    with open(_JSON.value, "w") as fh:
      json.dump(out, fh, indent=1)


def picture(path, world, water, real_coarse, model_coarse, fine, real, model, side=384):
  """Three columns, the coarse map's water share above (white = all water) and the scene's labels below: the
  two-level model (its own coarse map, its scene), the fine level over the real coarse map, the real region."""
  from PIL import Image

  pal = np.asarray(world.palette, np.uint8)

  def share(x):
    v = (np.clip(np.asarray(x)[..., water], -1, 1) + 1) * 127.5
    return Image.fromarray(v.astype(np.uint8)).convert("RGB").resize((side, side), Image.NEAREST)

  def labels(lab):
    return Image.fromarray(pal[lab]).resize((side, side), Image.BOX)

  gap = 8
  img = Image.new("RGB", (3 * side + 2 * gap, 2 * side + gap), (255, 255, 255))
  for k, xc in enumerate((model_coarse, real_coarse, real_coarse)):
    img.paste(share(xc), (k * (side + gap), 0))
  for k, lab in enumerate((model, fine, real)):
    img.paste(labels(lab), (k * (side + gap), side + gap))
  img.save(path)


def joined_picture(path, sets, least, zoom=3):
  """Rows of coarse maps (water shares ``[n, h, w]`` per set, side by side): blocks at least ``least`` water in blue,
  the largest connected region of them in red, drier blocks in gray by their share."""
  from PIL import Image
  from scipy import ndimage

  def panel(s):
    m = s >= least - 1e-6
    comp, k = ndimage.label(m, [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    img = np.repeat((255 - 200 * s)[..., None], 3, -1)
    img[m] = (120, 160, 230)
    if k:
      img[comp == np.bincount(comp.ravel())[1:].argmax() + 1] = (200, 40, 40)
    return np.kron(img, np.ones((zoom, zoom, 1))).astype(np.uint8)

  gap = 8
  rows = []
  for i in range(min(len(x) for x in sets)):
    panels = [panel(x[i]) for x in sets]
    sep = np.full((panels[0].shape[0], gap, 3), 255, np.uint8)
    rows.append(np.concatenate(sum(([p, sep] for p in panels), [])[:-1], 1))
  hsep = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
  Image.fromarray(np.concatenate(sum(([r, hsep] for r in rows), [])[:-1], 0)).save(path)


def cut_picture(path, world, real, fine, fine_rgb, side=96, zoom=4):
  """Real labels | the fine level's labels over real's coarse map | its colours, ``side`` px around the point
  where most of real's largest water body is land in the fine scene, each pixel ``zoom`` times."""
  from PIL import Image
  from scipy import ndimage

  names = world.class_names
  _, missed = pieces(real, fine, names)
  dense = ndimage.uniform_filter(missed.astype(np.float32), side // 2)
  y, x = np.unravel_index(dense.argmax(), dense.shape)
  y0 = int(np.clip(y - side // 2, 0, real.shape[0] - side))
  x0 = int(np.clip(x - side // 2, 0, real.shape[1] - side))
  pal = np.asarray(world.palette, np.uint8)
  parts = [pal[real], pal[fine], np.asarray(fine_rgb, np.uint8)]
  gap = np.full((side, 4, 3), 255, np.uint8)
  img = np.concatenate([c for p in parts for c in (p[y0 : y0 + side, x0 : x0 + side], gap)][:-1], 1)
  Image.fromarray(img).resize((img.shape[1] * zoom, side * zoom), Image.NEAREST).save(path)
  print(f"{path}: rows {y0}..{y0 + side}, columns {x0}..{x0 + side} of the first region")


if __name__ == "__main__":
  app.run(main)
