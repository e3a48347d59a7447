"""Offline evaluation of a trained workdir (``eval.py``): the model beside its calibration.

The scoring itself is ``genenv_jax.metrics.scorer``, shared with the training
loop; this module loads a checkpoint, draws the three sets and writes
``eval_results.json`` and the picture grids.
"""

from __future__ import annotations

import logging
import os

import jax
import numpy as np

from genenv_jax import layout as layout_lib
from genenv_jax import logs, parallel, trained
from genenv_jax import workdir as workdir_lib
from genenv_jax.data import pipeline, sources
from genenv_jax.families import base
from genenv_jax.metrics import baselines, features, multiscale, scorer
from genenv_jax.metrics import own_space as own_space_lib

EVAL_SEED = 0xE7A1


RENDERS = ("model", "world", "finished")


def evaluate_workdir(
  workdir: str,
  num_samples: int | None,
  step: int | None = None,
  batch: int | None = None,
  feature_net: str = "default",
  mesh=None,
  render: str = "model",
  model=None,
  out_dir: str | None = None,
  own_space: str = "auto",
) -> dict:
  """Scores a trained workdir beside its calibration, all on ``num_samples`` scenes per set.

  ``num_samples=None`` uses the run's ``train.eval_samples``, the count of
  the evaluations in its training log: FD is biased upwards by a small
  count (the covariance estimates are noisy), so FDs only compare at equal
  counts. KID is unbiased and compares across counts.

  ``own_space``: FD, KID, precision and recall also in a feature space
  trained on the run's own training split (``metrics.own_space``, keys
  ``*_own``): ``'auto'`` when the shipped feature network is out of its
  domain on the real images (or there is none), ``'always'``, ``'never'``.

  ``render='world'`` scores layout first: the RGB of each generated scene is
  drawn by the world's own renderer from the model's label and height maps
  (what engine exports use) instead of the model's RGB; results go to
  ``eval_results_render-world.json``.

  * ``model``: EMA samples of the checkpoint.
  * ``real``: held-out real scenes (test split) against the same train-split
    reference: the best a model can score.
  * ``untrained``: the same family freshly initialised: the worst.

  Metrics: FD, KID (mean and std over subsets), precision and recall in the
  scene feature network's space; validity, each rule's pass rate and the
  statistics distance for built-in worlds; test bits/dim for likelihood
  families beside an independent per-pixel baseline. Sampling and features
  are sharded over ``mesh`` (default: every device). Writes
  ``WORKDIR/eval_results.json``.
  """
  if render not in RENDERS:
    raise ValueError(f"render={render!r}: must be one of {list(RENDERS)}")
  if own_space not in own_space_lib.MODES:
    raise ValueError(f"own_space={own_space!r}: must be one of {list(own_space_lib.MODES)}")
  if num_samples is not None and (not isinstance(num_samples, int) or num_samples < 2):
    raise ValueError(f"num_samples={num_samples!r}: must be at least 2 scenes per set")
  mesh = mesh or parallel.make_mesh(-1)
  n_dev = mesh.devices.size
  # A shipped model (genenv_jax.models) comes loaded, with ``out_dir`` for its results (the package is not written).
  model = trained.load(workdir, step) if model is None else model
  if batch is None:  # the training log's chunks: with its count, the same samples as its last evaluation
    batch = int(model.config.train.batch_size)
  if batch < 1 or batch % n_dev:
    raise ValueError(f"batch_size={batch}: must be a positive multiple of the {n_dev} devices (e.g. {n_dev * 8})")
  if num_samples is None:  # the training log's count, so the two FDs compare (FD grows as the count shrinks)
    num_samples = int(model.config.train.eval_samples)
  if render == "finished" and (model.world is None or getattr(model.world, "finish", None) is None):
    raise ValueError(
      f"render='finished': needs a built-in world with a finishing pass (dungeon, caves, interiors); this model is on "
      f"{model.world.name if model.world else 'user data'}"
    )
  if render in ("world", "finished") and (
    model.world is None
    or not hasattr(model.world, "render")
    or "labels" not in model.channels
    or (getattr(model.world, "ground", None) is not None and "height" not in model.channels)
  ):
    raise ValueError(
      f"render='world': needs a built-in world with a renderer (city, terrain, characters) and a model with "
      f"'labels' (and 'height' where the world has heights) channels; this model has {list(model.channels)} on "
      f"{model.world.name if model.world else 'user data'}"
    )
  wd = model.workdir if out_dir is None else workdir_lib.Workdir(out_dir)
  wd.create()  # fail now, not after the scores are computed, if the results cannot be written
  cfg = model.config
  fnet = scorer.make_feature_net(feature_net, mesh)
  if model.world is None and fnet is None and own_space == "never":
    raise ValueError(
      f"workdir={workdir!r}: trained on user data, which has no scene rules; use a feature network or own_space"
    )
  train_src, test_src = sources.make_source(cfg.data, "train"), sources.make_source(cfg.data, "test")
  if len(test_src) < 2:
    raise ValueError(
      f"workdir={workdir!r}: no held-out images to compare with ({test_src.description}: {len(test_src)}); "
      "runs on folders from before the held-out split trained on every image: retrain, or give it a separate "
      "folder with --config.data.test_path=DIR when training"
    )
  ev = scorer.SceneEvaluator(model.world, train_src, test_src, model.layout, num_samples, fnet, pixels=True)
  repl = parallel.replicated(mesh)
  sample = jax.jit(model.family.sample, static_argnums=(2,), out_shardings=parallel.batch_sharded(mesh))
  key = jax.random.PRNGKey(EVAL_SEED)
  logs.phase(f"sampling {num_samples} scenes from step {model.step} and from the untrained model")
  x = scorer.sample_batches(sample, jax.device_put(model.params, repl), key, num_samples, batch)
  dummy = {
    "x": np.zeros((2, model.spec.image_size, model.spec.image_size, model.spec.channels), np.float32),
    "label": np.zeros((2,), np.int32),
  }
  fresh = jax.jit(model.family.init, out_shardings=repl)(jax.random.PRNGKey(cfg.seed), dummy).ema_params
  x0 = scorer.sample_batches(sample, fresh, key, num_samples, batch)
  logs.phase("scoring model, real held-out and untrained sets")
  real = {k[len("real/") :]: v for k, v in ev.reference.items()}
  likelihood = test_likelihood(model, test_src, batch, mesh)
  decoded = {"model": _rendered(model, x, render), "untrained": _rendered(model, x0, render)}
  changed = {k: decoded[k].pop("finish_changed", None) for k in decoded}
  result = {
    "workdir": workdir,
    "checkpoint_step": model.step,
    "num_samples": num_samples,
    # The real sets hold at most what their splits have (a small folder's held-out split can be far below
    # num_samples); the header says so instead of one count for every set.
    "num_real": min(num_samples, len(test_src)),
    "num_reference": min(num_samples, len(train_src)),
    "reference_set": train_src.description,
    "real_set": test_src.description,
    "num_devices": int(mesh.devices.size),
    "world_version": None if model.world is None else int(model.world.version),  # the world's generator
    "feature_net": None if fnet is None else {"path": features.portable_path(fnet.path), "sha256": fnet.meta["sha256"]},
    "model": ev.score_decoded(decoded["model"]),
    "real": real,
    "untrained": ev.score_decoded(decoded["untrained"]),
  }
  if render != "model":
    result["render"] = render
  if render == "finished":  # how much the finishing pass had to change: the share of label pixels, mean over scenes
    result["model"]["finish_changed"], result["untrained"]["finish_changed"] = changed["model"], changed["untrained"]
    real_labels = test_src.get(list(range(min(num_samples, len(test_src)))))["labels"]
    real["finish_changed"] = float(
      np.mean([(model.world.finish(lab, None, seed=i)[0] != lab).mean() for i, lab in enumerate(real_labels)])
    )
  if "height" in model.layout.channels:
    # Terrain statistics of the heights (spectrum slope and distance, mean slope, drainage) against the
    # held-out real heights; "reference" (the training split against held-out) is the real spread.
    n = min(num_samples, len(test_src), len(train_src), 1000)
    result["height_statistics"] = multiscale.height_sets(
      {
        "real": layout_lib.unit(test_src.get(list(range(n)))["height"]),
        "reference": layout_lib.unit(train_src.get(list(range(n)))["height"]),
        "model": model.layout.decode(x[:n])["height"],
        "untrained": model.layout.decode(x0[:n])["height"],
      }
    )
  if likelihood:
    result["test_likelihood"] = likelihood
    result["baseline_independent_pixel_bpd"] = baselines.independent_pixel_bpd(train_src, test_src, model.layout)
  in_domain = True
  if fnet is not None and "looks/clean" in real:
    result["feature_net_domain"] = domain = feature_net_domain(
      real["looks/clean"], model.spec.image_size, fnet.input_size, model.world.name if model.world else ""
    )
    in_domain = domain["in_domain"]
    if not in_domain:
      logging.warning(domain["note"])
  if own_space == "always" or (own_space == "auto" and (fnet is None or not in_domain)):
    logs.phase("training the own-space encoder on the training split (cached in the workdir)")
    result["own_space"] = own_scores(ev, train_src, model.layout, num_samples, wd.eval_dir, mesh, result, decoded)
  grids = write_family_grids(model, test_src, x, wd.eval_dir)
  if model.spec.conditional:
    grids.append(write_class_grid(model, sample, repl, key, wd.eval_dir, batch))
  result["grids"] = [os.path.join(workdir, os.path.relpath(p, wd.path)) for p in grids]
  out = wd.eval_results if render == "model" else wd.join(f"eval_results_render-{render}.json")
  workdir_lib.write_json(out, result)
  logs.phase(f"wrote {out}")
  return result


OWN_SPACE_IMAGES = 4096  # training-split images the own-space encoder learns from (at most)


def own_scores(ev, train_src, layout, n: int, cache_dir: str, mesh, result: dict, decoded: dict) -> dict:
  """Adds ``*_own`` scores to ``result``'s model, real and untrained rows; returns the encoder's record.

  The encoder learns from training-split images other than the reference set
  (``ev``'s, the first ``n`` of a seeded permutation), so the reference and the
  held-out images are both unseen by it: real against real then measures the
  split, not the encoder's memory. A split too small to spare them shares them.
  """
  order = ev.real_order(len(train_src), seed=1)
  rest = order[n:] if len(order) - n >= 512 else order
  idx = np.sort(rest[:OWN_SPACE_IMAGES])
  images = layout.decode(layout.encode(train_src.get([int(i) for i in idx])))
  space = own_space_lib.OwnSpace(images, layout, cache_dir, mesh)
  reference = space.features(ev.reference_decoded)
  result["real"].update(space.compare(reference, ev.held_decoded))
  for name in ("model", "untrained"):
    result[name].update(space.compare(reference, decoded[name]))
  return {k: v for k, v in space.meta.items() if k != "log"} | {
    "cache": features.portable_path(space.meta["cache"]),
    "images": len(idx),
    "reference_seen": bool(len(order) - n < 512),
    "note": "FD/KID/precision/recall in a feature space trained on this run's own training split "
    "(metrics.own_space): *_own keys",
  }


# Below this share of real held-out images called "clean" by the feature
# network's corruption head, the images are outside the domain it was trained
# on (the built-in worlds), and FD/KID/precision/recall in its space say
# little; the classifier two-sample test on pixel statistics still holds.
IN_DOMAIN_CLEAN = 0.5


def feature_net_domain(real_clean: float, image_size: int | None = None, input_size: int = 32, world: str = "") -> dict:
  """Whether the scene feature network is in its domain on these real images (from its corruption head).

  The network reads ``input_size`` px: images of another size are resized, and a smaller one upsampled
  looks blurred to it whatever it shows; the note then names the size as the likely cause.
  """
  in_domain = real_clean >= IN_DOMAIN_CLEAN
  note = f"the scene feature network calls {100 * real_clean:.0f}% of the real held-out images clean: "
  if in_domain:
    note += "they are in its domain."
  else:
    note += f"below {100 * IN_DOMAIN_CLEAN:.0f}%, they are outside the domain it was trained on; "
    if image_size is not None and image_size != input_size:
      what = f"the {world} world" if world else "your images"
      how = "upsampled (they look blurred to it)" if image_size < input_size else "resized"
      note += (
        f"the likely cause is the image size, not {what}: the network reads {input_size} px and these "
        f"{image_size}-px images are {how}; "
      )
    note += (
      "FD, KID and precision/recall in its space are unreliable here: read c2st/pixels "
      "(0.5 = indistinguishable from real)."
    )
  out = {"real_looks_clean": real_clean, "in_domain": in_domain, "note": note}
  if image_size is not None:
    out["image_size"], out["input_size"] = image_size, input_size
  return out


def write_class_grid(model, sample, repl, key, out_dir: str, batch: int, cols: int = 8) -> str:
  """A conditional model's samples, one row per scene class, the class name left of each row."""
  n, rows = batch, []  # batch: a multiple of the mesh's devices (checked by the caller)
  for c in range(model.spec.num_classes):
    x = sample(jax.device_put(model.params, repl), jax.random.fold_in(key, 0xC1A55 + c), n, c)
    rows.append(model.layout.decode(parallel.to_host(x)[: min(cols, n)])["rgb"])
  names = model.scene_classes or tuple(str(c) for c in range(model.spec.num_classes))
  path = os.path.join(out_dir, "samples_by_class.png")
  logs.save_grid(path, np.concatenate(rows).repeat(2, 1).repeat(2, 2), cols=min(cols, n), row_labels=names)
  return path


def _rendered(model, x: np.ndarray, render: str) -> dict[str, np.ndarray]:
  """Decoded samples; with ``render='world'`` their RGB drawn by the world from their labels and heights.

  ``render='finished'``: first the world's finishing pass (``levels.finish``) mends each label map into a
  playable level; ``finish_changed`` is the mean share of label pixels it changed.
  """
  decoded = model.layout.decode(x)
  if render == "finished":
    done = [model.world.finish(lab, h, seed=i) for i, (lab, h) in enumerate(zip(decoded["labels"], decoded["height"]))]
    labels = np.stack([lab for lab, _ in done]).astype(decoded["labels"].dtype)
    decoded["finish_changed"] = float((labels != decoded["labels"]).mean())
    decoded["labels"], decoded["height"] = labels, np.stack([h for _, h in done]).astype(decoded["height"].dtype)
  if render in ("world", "finished"):
    heights = decoded["height"] if "height" in decoded else np.zeros(decoded["labels"].shape, np.float32)
    decoded["rgb"] = np.stack(
      [model.world.render(lab, h, seed=i) for i, (lab, h) in enumerate(zip(decoded["labels"], heights))]
    )
  return decoded


class _At8Bits:
  """A source whose 16-bit records (heights) read at their nearest 8-bit level: bits/dim counts 8-bit values."""

  def __init__(self, source):
    self._source = source

  def __len__(self):
    return len(self._source)

  def get(self, indices):
    return {k: layout_lib.to_8bit(v) if k != "label" else v for k, v in self._source.get(indices).items()}


def test_likelihood(model, test_source, batch: int, mesh) -> dict[str, float]:
  """The family's likelihood metrics (its ``roles.likelihood``) over the whole test split (empty for GANs).

  Bits/dim are of the 8-bit data, as the per-pixel baseline's: 16-bit heights are read at their nearest 8-bit
  level here (the likelihoods dequantise by one 8-bit step), 8-bit records as they are.
  """
  keys = list(model.family.roles.likelihood)
  if not keys:
    return {}
  loader = pipeline.Loader(_At8Bits(test_source), model.layout, 0, batch, parallel.batch_sharded(mesh))
  state = base.TrainState(
    step=jax.numpy.zeros((), jax.numpy.int32),
    params=model.train_params,
    opt_state=None,
    ema_params=model.params,
    rng=jax.random.PRNGKey(0),
    skipped=jax.numpy.zeros((), jax.numpy.int32),
  )
  state = jax.device_put(state, parallel.replicated(mesh))
  step = jax.jit(model.family.eval_step)
  # Dispatch every batch, then fetch once: no host sync per batch.
  per_batch = [step(state, loader.global_batch_at(s)) for s in range(len(test_source) // batch)]
  per_batch = jax.device_get(per_batch)
  return {k: float(np.mean([m[k] for m in per_batch])) for k in keys}


def write_family_grids(model, test_source, samples: np.ndarray, out_dir: str, n: int = 8, steps: int = 8) -> list[str]:
  """PNG grids: prior samples, samples above real scenes, and a VAE's reconstructions and interpolations.

  Args:
    model: a ``trained.Trained``.
    test_source: real scenes for the comparisons.
    samples: model samples [>= n*n, h, w, C] in [-1, 1] (the ones that were scored).
    out_dir: where the PNGs go.

  Returns the paths written.
  """
  extras = model.family.extras or {}
  lay = model.layout
  # Real scenes drawn at random (seeded), so a folder sorted by class shows every class.
  idx = np.sort(np.random.default_rng(EVAL_SEED).permutation(len(test_source))[: 2 * n])
  raw = test_source.get([int(i) for i in idx])
  x = lay.encode(raw)
  paths = []

  def tiles(t):
    return lay.tiles(lay.decode(np.asarray(t)))

  if "reconstruct" in extras:
    rec = jax.jit(extras["reconstruct"])(model.params, x[:n])
    pairs = np.stack([tiles(x[:n]), tiles(rec)], 1).reshape(2 * n, *tiles(rec).shape[1:])
    paths.append(os.path.join(out_dir, "reconstructions.png"))
    logs.save_grid(paths[-1], pairs, cols=2)  # each row: real | reconstruction
  if "interpolate" in extras:
    path = jax.jit(extras["interpolate"], static_argnums=(3,))(model.params, x[:n], x[n : 2 * n], steps)
    flat = np.asarray(path).reshape(n * steps, *path.shape[2:])
    paths.append(os.path.join(out_dir, "interpolations.png"))
    logs.save_grid(paths[-1], tiles(flat), cols=steps)  # each row: one pair, left to right
  prior = samples[: n * n]
  paths.append(os.path.join(out_dir, "prior_samples.png"))
  logs.save_grid(paths[-1], tiles(prior), cols=n)
  # RGB only, 4x nearest-neighbour: top row samples, bottom row real test scenes.
  rgb = lay.decode(np.asarray(prior[:n]))["rgb"]
  both = np.concatenate([rgb, lay.decode(x[:n])["rgb"]]).repeat(4, 1).repeat(4, 2)
  paths.append(os.path.join(out_dir, "samples_vs_real.png"))
  logs.save_grid(paths[-1], both, cols=n)
  return paths


def header(r: dict) -> str:
  """The first line of the table: how many scenes each set really holds (the real ones can hold fewer)."""
  n = r["num_samples"]
  real, ref = r.get("num_real", n), r.get("num_reference", n)
  sets = f"{n} generated scenes (model, untrained), {real} real held-out" + (
    f" (all the held-out split has: FDs against it are biased up at {real})" if real < n else ""
  )
  sets += f", {ref} reference" + (" (all the training split has)" if ref < n else "")
  return (
    f"step {r['checkpoint_step']}: {sets}; {r['num_devices']} devices "
    "(FD depends on the count: compare FDs at equal counts; KID does not)"
  )
