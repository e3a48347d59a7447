r"""Scores a trained workdir beside its calibration: real held-out scenes and an untrained model.

  python eval.py --workdir=runs/gan_city_cpu --num_samples=1000

Feature-space FD, KID and precision/recall (the shipped scene feature network,
or ``--feature_net=PATH``), the world's validity rules and statistics
distance, and test bits/dim for likelihood families. Writes
``WORKDIR/eval_results.json`` and prints a table.
"""

import sys

from absl import app, flags

from genenv_jax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir (or give --model).")
_MODEL = flags.DEFINE_string("model", None, "A shipped model (python -m genenv_jax.models) instead of a workdir.")
_OUTPUT = flags.DEFINE_string("output", None, "With --model: the folder for its scores (default ./eval_<model>).")
_NUM = flags.DEFINE_integer(
  "num_samples", None, "Scenes per set (default: the run's train.eval_samples, as in its training log)."
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).")
_BATCH = flags.DEFINE_integer(
  "batch_size", None, "Scenes per device call, a multiple of the device count (default: the run's train.batch_size)."
)
_RENDER = flags.DEFINE_enum(
  "render",
  "model",
  ["model", "world", "finished"],
  "'world': score the world's rendering of the model's labels and heights; 'finished': the level worlds' finishing "
  "pass mends the labels into playable levels first (dungeon, caves, interiors).",
)
_SCENE = flags.DEFINE_string(
  "scene_size", "", "HxW: score large scenes of the seamless canvas against real regions of that size instead."
)
_FEATURES = flags.DEFINE_string("feature_net", "default", "'default' (shipped), 'none', or a feature-net .npz path.")
_OWN = flags.DEFINE_enum(
  "own_space",
  "auto",
  ["auto", "always", "never"],
  "FD/KID/precision/recall also in a feature space trained on the run's own training split (*_own keys): "
  "'auto' when the shipped feature network is out of its domain on the real images.",
)


def _fmt(v, spec):
  return "n/a" if v is None else format(v, spec)


def _row(r, k):
  """One metric's line; a set without the metric (the real set has no finishing pass to score) reads n/a."""
  cells = (_fmt(r[s].get(k), ">10.4f") for s in ("untrained", "model", "real"))
  return f"{k:<34} " + " ".join(cells)


def main(argv):
  del argv
  cli.start()
  if bool(_WORKDIR.value) == bool(_MODEL.value):
    print("error: give one source: --workdir=A_TRAIN_PY_WORKDIR or --model=A_SHIPPED_MODEL", file=sys.stderr)
    return 1
  if _SCENE.value:
    return _large()
  from genenv_jax import evaluation  # here: --help stays fast (no JAX import)

  try:
    shipped, out_dir = None, None
    if _MODEL.value:
      from genenv_jax import models

      shipped = models.load(_MODEL.value)
      out_dir = _OUTPUT.value or f"eval_{_MODEL.value}"
    r = evaluation.evaluate_workdir(
      _WORKDIR.value or f"model:{_MODEL.value}",
      _NUM.value,
      _STEP.value,
      batch=_BATCH.value,
      feature_net=_FEATURES.value,
      render=_RENDER.value,
      model=shipped,
      out_dir=out_dir,
      own_space=_OWN.value,
    )
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(evaluation.header(r))
  print(f"reference: {r['reference_set']}\nreal held-out: {r['real_set']}")
  print(f"{'metric':<34} {'untrained':>10} {'model':>10} {'real':>10}")
  for k in r["model"]:
    print(_row(r, k))
  for k, v in r.get("test_likelihood", {}).items():
    print(
      f"test {k:<29} {_fmt(v, '>10.3f')}   (independent per-pixel baseline {r['baseline_independent_pixel_bpd']:.3f})"
    )
  return 0


def _large():
  from genenv_jax import large_eval, tiling, workdir

  try:
    h, w = tiling.parse_size(_SCENE.value)
    shipped = None
    if _MODEL.value:
      from genenv_jax import models

      shipped = models.load(_MODEL.value)
    r = large_eval.evaluate(
      _WORKDIR.value or f"model:{_MODEL.value}", h, w, _NUM.value or 8, _FEATURES.value, _STEP.value, model=shipped
    )
    dest = workdir.Workdir(_WORKDIR.value or _OUTPUT.value or f"eval_{_MODEL.value}")
    dest.create()
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  out = dest.large_eval_results(h, w)
  workdir.write_json(out, r)
  print(f"step {r['checkpoint_step']}: {r['num_scenes']} scenes of {h}x{w} per set, {r['crop']}-px crops; wrote {out}")
  print(f"{'metric':<34} {'untrained':>10} {'model':>10} {'real':>10}")
  for k in r["model"]:
    print(_row(r, k))
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
