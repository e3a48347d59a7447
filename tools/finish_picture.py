r"""A level model's samples before and after the finishing pass, beside real levels.

  python tools/finish_picture.py runs/fm_dungeon_cpu --output=docs/fm_dungeon_cpu_finished.png
  python tools/finish_picture.py runs/fm_dungeon_cpu --scene_size=128 --output=docs/fm_dungeon_128_finished.png
  python tools/finish_picture.py runs/fm_interiors_cpu --output=docs/fm_interiors_cpu_finished.png

Columns: ``--num`` samples (seed ``--seed``), then as many real levels
(world seeds from 6e9 up, away from the training and test data). Rows: the
model's RGB; its label map; the label map after the world's finishing pass
(``levels.finish``, what ``eval.py --render=finished`` and ``sample.py
--render=finished`` apply); the same with every pixel the pass changed in
magenta; and the RGB the world draws from the finished labels. Real levels
pass through the same pass (it changes none of them). It prints how many
samples pass every rule before and after.

``--scene_size=N``: one N x N scene of the model's seamless canvas (as
``sample.py --scene_size=NxN`` draws it) as one level instead: its labels,
the finished labels with the changes in magenta, and the world's drawing.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

_OUTPUT = flags.DEFINE_string("output", None, "The PNG to write.", required=True)
_NUM = flags.DEFINE_integer("num", 8, "Samples (and real levels).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_SCALE = flags.DEFINE_integer("scale", 4, "Pixel repeat.")
_SCENE = flags.DEFINE_integer("scene_size", 0, "N: one NxN canvas scene as one level instead of window samples.")

MAGENTA = (255, 0, 255)
ROWS = ("RGB", "labels", "finished", "changed", "drawn")


def columns(world, rgb, labels, seed0: int):
  """One picture column per scene: RGB, labels, finished labels, changes, finished RGB; and (raw, done) valid."""
  import numpy as np

  cols, ok = [], []
  for i, (im, lab) in enumerate(zip(rgb, labels)):
    done, _ = world.finish(lab, None, seed=seed0 + i)
    changed = world.palette[done].copy()
    changed[done != lab] = MAGENTA
    cols.append(np.concatenate([im, world.palette[lab], world.palette[done], changed, world.render(done, None, i)], 0))
    ok.append((all(world.validity(lab).values()), all(world.validity(done).values())))
  return cols, ok


def main(argv):
  import jax
  import numpy as np

  from genenv_jax import logs, trained

  if len(argv) != 2:
    print("usage: python tools/finish_picture.py WORKDIR --output=FILE.png", file=sys.stderr)
    return 1
  model = trained.load(argv[1])
  w = model.world
  if w is None or getattr(w, "finish", None) is None:
    print(
      f"error: {argv[1]}: needs a model of a level world with a finishing pass (dungeon, caves, interiors)",
      file=sys.stderr,
    )
    return 1
  n, s = _NUM.value, _SCALE.value
  if _SCENE.value:
    from genenv_jax import canvas

    size = _SCENE.value
    d = model.layout.decode(canvas.render_scene(model, size, size, seed=_SEED.value)[None])
    lab = d["labels"][0]
    done, _ = w.finish(lab, None, seed=_SEED.value)
    changed = w.palette[done].copy()
    changed[done != lab] = MAGENTA
    gap = np.full((size, 4, 3), 255, np.uint8)
    row = np.concatenate([w.palette[lab], gap, changed, gap, w.render(done, None, _SEED.value)], 1)
    logs.save_grid(_OUTPUT.value, row[None].repeat(s, 1).repeat(s, 2), cols=1)
    v0, v1 = w.validity(lab), w.validity(done)
    print(
      f"wrote {_OUTPUT.value}: a {size}x{size} scene, labels | finished (changes magenta) | drawn; "
      f"{(done != lab).mean():.2%} of pixels changed; rules raw {v0}; finished {v1}"
    )
    return 0
  x = np.asarray(jax.jit(model.family.sample, static_argnums=(2,))(model.params, jax.random.PRNGKey(_SEED.value), n))
  d = model.layout.decode(x)
  gen, gen_ok = columns(w, d["rgb"], d["labels"], 0)
  real = [w.generate(6 * 10**9 + i, model.spec.image_size) for i in range(n)]
  real_cols, real_ok = columns(w, [r.rgb for r in real], [r.labels for r in real], 0)
  gap = np.full_like(gen[0][:, :4], 255)
  h = model.spec.image_size
  strip = np.concatenate([*gen, gap, *real_cols], 1)
  rows = np.stack([strip[k * h : (k + 1) * h] for k in range(len(ROWS))])
  logs.save_grid(_OUTPUT.value, rows.repeat(s, 1).repeat(s, 2), cols=1, row_labels=ROWS)
  raw, done = sum(a for a, _ in gen_ok), sum(b for _, b in gen_ok)
  print(
    f"wrote {_OUTPUT.value}: {n} samples | {n} real; rows RGB, labels, finished, changes, finished RGB; "
    f"samples valid raw {raw}/{n}, finished {done}/{n}; real {sum(a for a, _ in real_ok)}/{n} and "
    f"{sum(b for _, b in real_ok)}/{n}"
  )
  return 0


if __name__ == "__main__":
  app.run(main)
