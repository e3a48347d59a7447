r"""Writes the results table of ``docs/results.md`` from ``results/*.json`` (never edit that table by hand).

  python tools/results_table.py          # rewrite the table in docs/results.md
  python tools/results_table.py --check  # exit 1 if docs/results.md's table is stale

Each JSON is written by ``python tools/reproduce.py CONFIG``; its command is in the table.
"""

import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

from genenv_jax import families  # noqa: E402

PAGE = "docs/results.md"  # the page that holds the table
BEGIN, END = "<!-- results:begin (tools/results_table.py) -->", "<!-- results:end -->"


def _cell(r, key, fmt, scale=1.0):
  m, real, un = (r[c].get(key) for c in ("model", "real", "untrained"))
  if m is None:
    return "—"
  return f"**{fmt.format(m * scale)}** ({fmt.format(real * scale)} / {fmt.format(un * scale)})"


def _kid(r):
  m, real, un = (r[c] for c in ("model", "real", "untrained"))
  return f"**{m['kid']:.3f}±{m['kid_std']:.3f}** ({real['kid']:.3f} / {un['kid']:.3f})"


def _overrides(r):
  return "".join(f" `{o}`" for o in r.get("overrides", []))


def _c2st(r):
  """Classifier two-sample test accuracy, on features | on pixel statistics (0.5: indistinguishable)."""
  if "c2st/pixels" not in r["model"]:
    return "—"

  def both(c):
    return " \\| ".join(f"{r[c][k]:.2f}" for k in ("c2st/features", "c2st/pixels") if k in r[c])

  return f"**{both('model')}** ({both('real')} / {both('untrained')})"


def _validity(r):
  if "validity" not in r["model"]:
    return "—"
  if r["real"]["validity"] < 0.9:  # rules read from RGB alone: even real scenes fail, so not a measure
    return f"n/m (real {r['real']['validity']:.2f})"
  return _cell(r, "validity", "{:.3f}")


def _bpd(r):
  lik = r.get("test_likelihood")
  if not lik:
    return "—"
  names = families.entry(r["family"]).roles.likelihood  # what each likelihood metric is called
  vals = " / ".join(f"{names.get(k, k)} **{v:.3f}**" for k, v in sorted(lik.items()))
  return f"{vals} (per-pixel {r['baseline_independent_pixel_bpd']:.3f})"


def table(results_dir: str) -> str:
  rows = [
    "| config | family, world | FD ↓ | KID ↓ | precision ↑ | recall ↑ | validity ↑ | stats distance ↓ "
    "| C2ST features \\| pixels → 0.5 | test bits/dim ↓ | reproduce |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
    with open(path) as f:
      r = json.load(f)
    rows.append(
      f"| `{r['config']}`{_overrides(r)} | {r['family']}, {r['world']} {r['image_size']}px, "
      f"step {r['checkpoint_step']} "
      f"| {_cell(r, 'fd', '{:.2f}')} | {_kid(r)} | {_cell(r, 'precision', '{:.3f}')} "
      f"| {_cell(r, 'recall', '{:.3f}')} | {_validity(r)} | {_cell(r, 'stats_distance', '{:.3f}')} "
      f"| {_c2st(r)} | {_bpd(r)} | `{r['command']}` |"
    )
  n = {json.load(open(p))["num_samples"] for p in glob.glob(os.path.join(results_dir, "*.json"))}
  rows.append("")
  rows.append(
    f"Each cell: **trained model** (real held-out scenes / untrained model), {', '.join(map(str, sorted(n)))} "
    "scenes per set (a folder's held-out split may hold fewer), all against the same train-split reference. "
    "C2ST: the held-out accuracy of a classifier telling the set from the reference (0.5 = indistinguishable)."
  )
  return "\n".join(rows)


def render(readme: str, results_dir: str) -> str:
  if BEGIN not in readme or END not in readme:
    raise ValueError(f"{PAGE} has no {BEGIN!r} ... {END!r} markers")
  head, rest = readme.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  return f"{head}{BEGIN}\n{table(results_dir)}\n{END}{tail}"


def main(argv):
  readme_path = os.path.join(ROOT, PAGE)
  with open(readme_path) as f:
    readme = f.read()
  new = render(readme, os.path.join(ROOT, "results"))
  if "--check" in argv:
    if new != readme:
      print(f"{PAGE}'s results table is stale: run python tools/results_table.py", file=sys.stderr)
      return 1
    return 0
  with open(readme_path, "w") as f:
    f.write(new)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
