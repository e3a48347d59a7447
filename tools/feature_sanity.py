r"""Prints how FD, KID and precision/recall move under known degradations of real scenes.

  python tools/feature_sanity.py --world=city --n=1000

Reference: train-split seeds; compared sets: test-split seeds, as they are and
degraded. The degradation table of docs/results.md is this script's output.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from genenv_jax import scenes  # noqa: E402
from genenv_jax.metrics import degradations, feature_metrics, features  # noqa: E402

_WORLD = flags.DEFINE_string("world", "city", "Built-in world.")
_N = flags.DEFINE_integer("n", 1000, "Scenes per set.")
_NET = flags.DEFINE_string("feature_net", None, "Feature-net .npz (default: shipped).")


def main(argv):
  del argv
  net = features.FeatureNet(_NET.value)
  n, name = _N.value, _WORLD.value
  world = scenes.get_world(name)
  ref = net.features(degradations.world_rgb(name, 0, n))
  held = degradations.world_rgb(name, 10**9, n)
  last = len(world.scene_class_names) - 1
  sets = {
    "real held-out (floor)": held,
    "3x3 box blur": degradations.blur(held),
    "Gaussian noise, sigma 4/255 (barely visible)": degradations.noise(held, 4.0),
    "Gaussian noise, sigma 16/255": degradations.noise(held, 16.0),
    f"mode dropping (no '{world.scene_class_names[last]}' scenes)": degradations.world_rgb(
      name, 10**9, n, drop_class=last
    ),
  }
  print(f"| {name}, {n} scenes per set | FD | KID | precision | recall | looks clean |")
  print("|---|---|---|---|---|---|")
  for label, rgb in sets.items():
    feats, verdicts = net.embed(rgb)
    m = feature_metrics.compare(ref, feats, net.mesh)
    print(
      f"| {label} | {m['fd']:.2f} | {m['kid']:.4f}±{m['kid_std']:.4f} "
      f"| {m['precision']:.3f} | {m['recall']:.3f} | {net.verdict_fractions(verdicts)['looks/clean']:.3f} |"
    )


if __name__ == "__main__":
  app.run(main)
