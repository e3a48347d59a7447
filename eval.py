r"""Scores a trained workdir: validity and statistics distance beside real and untrained.

  python eval.py --workdir=runs/city_cpu --num_samples=1000

Writes ``WORKDIR/eval_results.json`` and prints a table.
"""

import sys

from absl import app, flags

from genenv_jax import evaluation

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir.", required=True)
_NUM = flags.DEFINE_integer("num_samples", 1000, "Scenes per set.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).")


def main(argv):
  del argv
  try:
    r = evaluation.evaluate_workdir(_WORKDIR.value, _NUM.value, _STEP.value)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  keys = ["validity", "stats_distance"] + sorted(k for k in r["model"] if k.startswith("rule/"))
  print(f"step {r['checkpoint_step']}, {r['num_samples']} scenes each")
  print(f"{'metric':<30} {'untrained':>10} {'model':>10} {'real':>10}")
  for k in keys:
    print(f"{k:<30} {r['untrained'][k]:>10.3f} {r['model'][k]:>10.3f} {r['real'][k]:>10.3f}")
  for k, v in r.get("test_likelihood", {}).items():
    print(f"test {k:<25} {v:>10.3f}   (independent per-pixel baseline {r['baseline_independent_pixel_bpd']:.3f})")
  return 0


if __name__ == "__main__":
  app.run(main)
