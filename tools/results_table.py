r"""Writes the results tables from ``results/`` (never edit those tables by hand).

  python tools/results_table.py          # rewrite the tables in docs/results.md and docs/large-scenes.md
  python tools/results_table.py --check  # exit 1 if a table is stale

``docs/results.md``: one row per ``results/<config>.json``, written by ``python
tools/reproduce.py CONFIG``. ``docs/large-scenes.md``: the rows of
``results/large_scenes.json`` (whole scenes at every size), written by ``python
tools/large_scenes.py``. Each row carries its command.
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
LARGE_PAGE = "docs/large-scenes.md"
LARGE_JSON = "large_scenes.json"  # results/large_scenes.json: a list of rows, not one config's results
LARGE_BEGIN, LARGE_END = "<!-- large-scenes:begin (tools/results_table.py) -->", "<!-- large-scenes:end -->"


def row_files(results_dir: str) -> list[str]:
  """The per-config results files (``results/large_scenes.json`` is a table of its own)."""
  return sorted(p for p in glob.glob(os.path.join(results_dir, "*.json")) if os.path.basename(p) != LARGE_JSON)


def _cell(r, key, fmt, scale=1.0):
  m, real, un = (r[c].get(key) for c in ("model", "real", "untrained"))
  if m is None:
    return "—"
  return f"**{fmt.format(m * scale)}** ({fmt.format(real * scale)} / {fmt.format(un * scale)})"


def _cell_own(r, key, fmt):
  """The shipped feature space's cell, and where eval.py measured it, the run's own space below it."""
  cell = _cell(r, key, fmt)
  if f"{key}_own" in r["model"]:
    cell += f"<br>own: {_cell(r, f'{key}_own', fmt)}"
  return cell


def _version(r):
  """' v2' where the row records its world's generator version (rows from before eval.py recorded it do not)."""
  v = r.get("world_version")
  return f" v{v}" if v else ""


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
  for path in row_files(results_dir):
    with open(path) as f:
      r = json.load(f)
    rows.append(
      f"| `{r['config']}`{_overrides(r)} | {r['family']}, {r['world']}{_version(r)} {r['image_size']}px, "
      f"step {r['checkpoint_step']} "
      f"| {_cell_own(r, 'fd', '{:.2f}')} | {_kid(r)} | {_cell_own(r, 'precision', '{:.3f}')} "
      f"| {_cell_own(r, 'recall', '{:.3f}')} | {_validity(r)} | {_cell(r, 'stats_distance', '{:.3f}')} "
      f"| {_c2st(r)} | {_bpd(r)} | `{r['command']}` |"
    )
  n = {json.load(open(p))["num_samples"] for p in row_files(results_dir)}
  rows.append("")
  rows.append(
    f"Each cell: **trained model** (real held-out scenes / untrained model), {', '.join(map(str, sorted(n)))} "
    "scenes per set (a folder's held-out split may hold fewer), all against the same train-split reference. "
    "C2ST: the held-out accuracy of a classifier telling the set from the reference (0.5 = indistinguishable). "
    "own: the same distance in a feature space trained on the run's own training split (eval.py measures it "
    "where the shipped feature network is out of its domain; metrics.own_space)."
  )
  return "\n".join(rows)


def _num(v, fmt="{:.2f}"):
  return "—" if v is None else fmt.format(v)


LARGE_COLUMNS = (
  ("coarse FD ↓", "coarse_fd", "{:.2f}"),
  ("coarse KID ↓", "coarse_kid", "{:.3f}"),
  ("coarse C2ST → 0.5", "coarse_c2st", "{:.2f}"),
  ("largest water share (distance ↓)", "ms/largest_water_share", "{:.3f}"),
  ("water log-area W1 ↓", "ms/water_log_areas_w1", "{:.2f}"),
  ("spectrum distance ↓", "ms/spectrum_distance", "{:.3f}"),
  ("whole-scene validity", "validity", "{:.2f}"),
  ("crop validity", "crop_validity", "{:.3f}"),
  ("seam", "seam", "{:.3f}"),
)


def large_table(results_dir: str) -> str:
  """The rows of results/large_scenes.json: whole scenes against real regions of the same size."""
  path = os.path.join(results_dir, LARGE_JSON)
  rows = json.load(open(path)) if os.path.exists(path) else []
  head = "| world, size | set | scenes | " + " | ".join(c[0] for c in LARGE_COLUMNS) + " | command |"
  out = [head, "|" + "---|" * (len(LARGE_COLUMNS) + 4)]
  for r in sorted(rows, key=lambda r: (r["world"], r["scene_size"], r["set"] != "real", r["config"], r["set"])):
    who = "real regions" if r["set"] == "real" else f"`{r['config']}`"
    who += " untrained" if r["set"] == "untrained" else ""
    cells = " | ".join(_num(r.get(k), f) for _, k, f in LARGE_COLUMNS)
    out.append(f"| {r['world']} {r['scene_size']} | {who} | {r['num_scenes']} | {cells} | `{r['command']}` |")
  out.append("")
  out.append(
    "Each set of whole scenes is judged against further real regions of the same size: the real row is real "
    "against real (the spread a model is read against), the untrained row the floor. Coarse: the scene "
    "downsampled to 32 px. `—`: not defined for this world or below 5 scenes."
  )
  return "\n".join(out)


def _between(text: str, begin: str, end: str, body: str, page: str) -> str:
  if begin not in text or end not in text:
    raise ValueError(f"{page} has no {begin!r} ... {end!r} markers")
  head, rest = text.split(begin, 1)
  _, tail = rest.split(end, 1)
  return f"{head}{begin}\n{body}\n{end}{tail}"


def render(readme: str, results_dir: str) -> str:
  return _between(readme, BEGIN, END, table(results_dir), PAGE)


def render_large(page: str, results_dir: str) -> str:
  return _between(page, LARGE_BEGIN, LARGE_END, large_table(results_dir), LARGE_PAGE)


def main(argv):
  stale = []
  for page, fn in ((PAGE, render), (LARGE_PAGE, render_large)):
    path = os.path.join(ROOT, page)
    with open(path) as f:
      text = f.read()
    new = fn(text, os.path.join(ROOT, "results"))
    if new != text:
      stale.append(page)
      if "--check" not in argv:
        with open(path, "w") as f:
          f.write(new)
  if "--check" in argv and stale:
    print(f"stale tables in {stale}: run python tools/results_table.py", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
