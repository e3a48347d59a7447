r"""Editing quality of the world server: random painted masks over real regions, beside a paste baseline and real.

  python benchmarks/server_edits.py --world=city_regions --masks=100
  python benchmarks/server_edits.py --workdir=runs/fm_city_regions_cpu --masks=40 --json=results/server_edits_fm.json
  python benchmarks/server_edits.py --model=fm_city_regions --masks=100 --area=160   # a shipped model

For each of ``--masks`` random edits (a disc or a painted blob, 300-1600
pixels, inside the centre 64x64 of a 128x128 region at a random place of
world seed 1; the painted class drawn from the world's non-road classes),
the 128x128 region is judged three ways:

* ``edit``: the source's own edit (``POST /api/edit``'s code path): the
  world's procedural edit, or the flow-matching canvas inpainting;
* ``paste``: the naive baseline: the masked window drawn alone (for a
  model: its canvas over the window only, painted classes held, no
  surroundings; for a world: the window of another place) and pasted in;
* ``real``: the region unedited (for a world a real region; for a model
  its own unedited region, the reference an edit should match).

``painted_labels`` is the rules on the unedited labels with the mask
relabelled to the painted class and nothing redrawn: what was asked (a
painted lake across a road cuts it, whatever draws the pixels).

Figures (means over the masks): ``rules`` (the world's rules pass on the
whole region), ``seam`` (mean |RGB step| across the mask's border over the
mean |RGB step| of the whole region: real sits near 1 on the same border,
and across real class boundaries at ``class_edge_seam_mean``, the step a
painted shore should have, and around the real object of the painted class
nearest the mask's size at ``object_seam_*``: the spread an edit's seam is
judged against), ``iou_labels`` (the
painted class vs the generated label map, inside the mask grown by 4 px)
and ``iou_rgb`` (the same with the class read from the colour, nearest
palette entry: does it look like what was painted; for ``real`` the row is
how well colour gives the class where it truly is).
"""

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def png_b64(a):
  buf = io.BytesIO()
  Image.fromarray(a).save(buf, format="PNG")
  return base64.b64encode(buf.getvalue()).decode()


def random_mask(rng, size=64) -> np.ndarray:
  if rng.random() < 0.5:
    r = rng.uniform(10, 22)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(r, size - r, 2)
    m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
  else:  # a painted blob: smoothed noise, thresholded, its largest piece
    f = ndimage.gaussian_filter(rng.standard_normal((size, size)), 6)
    f[:6], f[-6:], f[:, :6], f[:, -6:] = -1, -1, -1, -1
    m = f > np.quantile(f, 1 - rng.uniform(0.08, 0.35))
    lab, n = ndimage.label(m)
    if n > 1:
      m = lab == 1 + np.argmax(ndimage.sum(m, lab, range(1, n + 1)))
  return m


def seam(rgb: np.ndarray, mask: np.ndarray) -> float:
  a = rgb.astype(np.float64)
  steps, border = [], []
  for axis in (0, 1):
    d = np.abs(np.diff(a, axis=axis)).mean(-1)
    m0 = np.take(mask, range(mask.shape[axis] - 1), axis=axis)
    m1 = np.take(mask, range(1, mask.shape[axis]), axis=axis)
    steps.append(d.ravel())
    border.append(d[m0 != m1])
  return float(np.concatenate(border).mean() / np.concatenate(steps).mean())


def edge_ratio(rgb: np.ndarray, labels: np.ndarray) -> float:
  """Mean |RGB step| across real class boundaries over the mean step: what a true shore looks like."""
  a = rgb.astype(np.float64)
  steps, edges = [], []
  for axis in (0, 1):
    d = np.abs(np.diff(a, axis=axis)).mean(-1)
    diff = np.diff(labels.astype(np.int16), axis=axis) != 0
    steps.append(d.ravel())
    edges.append(d[diff])
  e = np.concatenate(edges)
  return float(e.mean() / np.concatenate(steps).mean()) if e.size else float("nan")


def object_seam(rgb: np.ndarray, labels: np.ndarray, cls: int, area: int) -> float:
  """The seam of a real object of class ``cls``: its 4-connected piece nearest ``area`` pixels (nan if none of 50+).

  What a painted object's border should look like: a real lake's shore
  against its real surroundings, normalised like ``seam``.
  """
  comp, k = ndimage.label(labels == cls)
  if not k:
    return float("nan")
  sizes = np.bincount(comp.ravel())[1:]
  ok = np.flatnonzero(sizes >= 50)
  if not ok.size:
    return float("nan")
  pick = ok[np.argmin(np.abs(np.log(sizes[ok] / area)))]
  return seam(rgb, comp == pick + 1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
  u = (a | b).sum()
  return float((a & b).sum() / u) if u else 1.0


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--world", default="")
  p.add_argument("--workdir", default="")
  p.add_argument("--model", default="", help="a shipped model (python -m genenv_jax.models)")
  p.add_argument("--masks", type=int, default=100)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument(
    "--area", type=int, default=2**18, help="places drawn in [-area, area); a small area shares a model's chunks"
  )
  p.add_argument("--json", default="")
  args = p.parse_args()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from genenv_jax.scenes import base, get_world
  from genenv_jax.server import app as server_app
  from genenv_jax.server import sources

  if sum(map(bool, (args.world, args.workdir, args.model))) != 1:
    sys.exit("give exactly one of --world, --workdir and --model")
  if args.world:
    src = sources.WorldSource(args.world)
  elif args.model:
    from genenv_jax import models

    src = sources.ModelSource(models.load(args.model))
  else:
    from genenv_jax import trained

    src = sources.ModelSource(trained.load(args.workdir))
  world = get_world(src.world)
  served = server_app.ServedWorld(src, tempfile.mkdtemp(prefix="bench_edit_"))
  names = list(src.class_names)
  choices = [i for i, n in enumerate(names) if n not in ("road",)]
  rng = np.random.default_rng(args.seed)
  rows = {k: {"rules": [], "seam": [], "iou_labels": [], "iou_rgb": []} for k in ("edit", "paste", "real")}
  painted_rules, painted_failed = [], {}
  t_start = time.time()
  for i in range(args.masks):
    y, x = (int(v) for v in rng.integers(-args.area, max(1, args.area - 128), 2))
    m64 = random_mask(rng)
    cls = int(rng.choice(choices))
    full = np.zeros((128, 128), bool)
    full[32:96, 32:96] = m64
    near = ndimage.binary_dilation(full, iterations=4)
    real = served.read(1, y, x, 128, 128)
    # the source's own edit
    rec = {"id": f"b{i}", "seed": 1, "y0": y + 32, "x0": x + 32, "h": 64, "w": 64,
           "mask": png_b64((m64 * 255).astype(np.uint8)), "labels": cls}  # fmt: skip
    arrays = served._compute_patch(rec)
    edited = [np.array(a) if a is not None else None for a in real]
    for k, name in enumerate(("rgb", "labels", "height")):
      if edited[k] is not None and name in arrays:
        edited[k][32:96, 32:96][m64] = arrays[name][m64]
    # the paste baseline
    if args.world:
      other = src.region(1, y + 100_003, x - 70_001, 64, 64)
    else:
      painted = np.where(m64, cls, -1).astype(np.int16)
      m, hh, ww = served.edit_context(64, 64)
      blank = sources.Layers(
        np.zeros((hh, ww, 3), np.uint8),
        np.zeros((hh, ww), np.uint8) if real.labels is not None else None,
        np.zeros((hh, ww), np.float32) if real.height is not None else None,
      )
      whole = np.ones((64, 64), bool)  # nothing known: the window drawn alone, painted classes held
      alone = src.inpaint(1, y + 32, x + 32, blank, m, whole, np.where(whole, painted, -1))
      other = alone
    pasted = [np.array(a) if a is not None else None for a in real]
    for k in range(3):
      if pasted[k] is not None and other[k] is not None:
        pasted[k][32:96, 32:96][m64] = other[k][m64]
    # The labels asked for: the unedited region with the mask relabelled (a road painted over is cut whatever
    # draws the pixels): the rules an edit is held to at best.
    if real.labels is not None:
      asked = real.labels.copy()
      asked[32:96, 32:96][m64] = cls
      checks = world.validity(asked, real.height)
      painted_rules.append(all(checks.values()))
      for rule, ok in checks.items():
        painted_failed[rule] = painted_failed.get(rule, 0) + (not ok)
    for kind, lay in (("edit", edited), ("paste", pasted), ("real", list(real))):
      rgb, labels, height = lay
      checks = world.validity(labels, height)
      rows[kind]["rules"].append(all(checks.values()))
      for rule, ok in checks.items():
        if not ok:
          failed = rows[kind].setdefault("failed", {})
          failed[rule] = failed.get(rule, 0) + 1
      rows[kind]["seam"].append(seam(rgb, full))
      from_rgb = base.rgb_to_labels(rgb, src.palette[: len(names)])
      if kind == "real":  # real class boundaries: the step a painted shore should have
        rows[kind].setdefault("class_edge", []).append(edge_ratio(rgb, labels))
        rows[kind].setdefault("object_seam", []).append(object_seam(rgb, labels, cls, int(m64.sum())))
        # how well colour gives the class where it truly is (the ceiling of iou_rgb)
        truth = (labels == cls) & near
        rows[kind]["iou_labels"].append(float("nan"))
        rows[kind]["iou_rgb"].append(iou(truth, (from_rgb == cls) & near) if truth.any() else float("nan"))
      else:
        rows[kind]["iou_labels"].append(iou(full, (labels == cls) & near))
        rows[kind]["iou_rgb"].append(iou(full, (from_rgb == cls) & near))
    if (i + 1) % 10 == 0:
      print(f"  {i + 1}/{args.masks} masks ({time.time() - t_start:.0f} s)", flush=True)
  print(f"\nsource: {src.name}; {args.masks} masks (discs and blobs), 128x128 regions")
  print(f"{'':>6} {'rules':>6} {'seam':>14} {'iou labels':>11} {'iou rgb':>8}")
  out = {"source": src.name.replace(ROOT + os.sep, ""), "masks": args.masks, "rows": {}}
  out["command"] = "python benchmarks/server_edits.py " + " ".join(sys.argv[1:])
  for kind, r in rows.items():
    s = np.array(r["seam"])
    fig = {
      "rules": float(np.mean(r["rules"])),
      "seam_mean": float(s.mean()), "seam_p10": float(np.percentile(s, 10)), "seam_p90": float(np.percentile(s, 90)),
      "iou_labels": float(np.nanmean(r["iou_labels"])) if kind != "real" else None,
      "iou_rgb": float(np.nanmean(r["iou_rgb"])),
    }  # fmt: skip
    fig["failed_rules"] = dict(sorted(r.get("failed", {}).items()))
    if "class_edge" in r:
      fig["class_edge_seam_mean"] = float(np.nanmean(r["class_edge"]))
      o = np.array(r["object_seam"])
      o = o[np.isfinite(o)]
      fig["object_seam_n"] = int(o.size)
      if o.size:
        fig["object_seam_mean"] = float(o.mean())
        fig["object_seam_p10"], fig["object_seam_p90"] = (float(v) for v in np.percentile(o, [10, 90]))
    out["rows"][kind] = fig
    il = "-" if fig["iou_labels"] is None else f"{fig['iou_labels']:.3f}"
    spread = f"{fig['seam_mean']:.2f} [{fig['seam_p10']:.2f},{fig['seam_p90']:.2f}]"
    fails = ", ".join(f"{k} {v}" for k, v in fig["failed_rules"].items())
    print(f"{kind:>6} {fig['rules']:6.2f} {spread:>14} {il:>11} {fig['iou_rgb']:8.3f}  {fails}")
  if painted_rules:
    fails = {k: v for k, v in sorted(painted_failed.items()) if v}
    out["painted_labels"] = {"rules": float(np.mean(painted_rules)), "failed_rules": fails}
    listed = ", ".join(f"{k} {v}" for k, v in fails.items())
    print(f"labels as painted (the mask relabelled, nothing redrawn): rules {np.mean(painted_rules):.2f}  {listed}")
  ce = out["rows"]["real"]["class_edge_seam_mean"]
  print(f"real class boundaries (a true shore or kerb) give a seam of {ce:.2f}: a painted class's border should too")
  r = out["rows"]["real"]
  if r.get("object_seam_n"):
    print(
      f"real objects of the painted class (nearest the mask's area; "
      f"{r['object_seam_n']} of {args.masks} regions hold one): "
      f"seam {r['object_seam_mean']:.2f} [{r['object_seam_p10']:.2f},{r['object_seam_p90']:.2f}]"
    )
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
