"""The results table (docs/results.md) is generated from results/*.json, one per config, each with its command."""

import glob
import json
import os

import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(name):
  return helpers.load_script(f"tools/{name}.py")


def test_results_page_table_is_what_the_script_writes():
  table = _tool("results_table")
  with open(os.path.join(ROOT, table.PAGE)) as f:
    readme = f.read()
  assert table.render(readme, os.path.join(ROOT, "results")) == readme, "run: python tools/results_table.py"
  with open(os.path.join(ROOT, table.LARGE_PAGE)) as f:
    page = f.read()
  assert table.render_large(page, os.path.join(ROOT, "results")) == page, "run: python tools/results_table.py"


def test_large_scene_rows_carry_the_fixed_fields_and_a_rerun_replaces_its_rows(tmp_path):
  from genenv_jax import large_eval

  part = {"coarse_fd": 1.0, "coarse_kid": 0.1, "coarse_c2st": 0.6, "ms/largest_water_share": 0.2, "validity": 1.0}
  scores = {"scene_size": [256, 256], "world": "city_regions", "num_scenes": 6, "checkpoint_step": 2000}
  scores.update(model=dict(part), untrained=dict(part, coarse_fd=9.0), real=dict(part, coarse_fd=0.5))
  path = str(tmp_path / "large_scenes.json")
  rows = large_eval.merge_rows(
    path, large_eval.result_rows(scores, "python tools/reproduce.py configs/x.py:cpu", "cmd 1")
  )
  assert [r["set"] for r in rows] == ["model", "untrained", "real"]
  for r in rows:
    assert {"config", "world", "scene_size", "coarse_fd", "command"} <= set(r) and r["scene_size"] == "256x256"
  scores["model"]["coarse_fd"] = 2.0
  rows = large_eval.merge_rows(
    path, large_eval.result_rows(scores, "python tools/reproduce.py configs/x.py:cpu", "cmd 2")
  )
  assert len(rows) == 3 and [r["coarse_fd"] for r in rows if r["set"] == "model"] == [2.0]
  rows = large_eval.merge_rows(
    path, large_eval.result_rows(scores, "python tools/reproduce.py configs/y.py:cpu", "cmd 3")
  )
  assert len(rows) == 5  # a second model of the same world and size shares the real row


def test_every_config_has_a_reproducible_result():
  configs = {
    os.path.splitext(os.path.basename(p))[0]
    for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
    if not os.path.basename(p).startswith("_")
  }
  results = {}
  for p in _tool("results_table").row_files(os.path.join(ROOT, "results")):
    with open(p) as f:
      r = json.load(f)
    results[os.path.splitext(os.path.basename(r["config"].split(":")[0]))[0]] = r
  assert configs <= set(results), f"configs without a results JSON: {sorted(configs - set(results))}"
  reproduce = _tool("reproduce")
  for p in _tool("results_table").row_files(os.path.join(ROOT, "results")):
    with open(p) as f:
      r = json.load(f)
    name = os.path.splitext(os.path.basename(p))[0]
    overrides = r.get("overrides", [])
    expected = f"python tools/reproduce.py {r['config']}" + "".join(f" --override={o}" for o in overrides)
    expected += f" --name={name}" if overrides else ""
    assert r["command"] == expected, name
    assert name == os.path.basename(r["workdir"]) == (name if overrides else reproduce.result_name(r["config"]))
    for column in ("model", "real", "untrained"):
      assert {"fd", "kid", "kid_std", "precision", "recall"} <= set(r[column])


def test_cells_show_model_beside_real_and_untrained(tmp_path):
  table = _tool("results_table")
  col = {"fd": 1.0, "kid": 0.002, "kid_std": 0.001, "precision": 0.5, "recall": 0.25}
  r = {
    "config": "configs/x.py:cpu",
    "family": "gan",
    "world": "city",
    "image_size": 32,
    "checkpoint_step": 10,
    "num_samples": 100,
    "command": "python tools/reproduce.py configs/x.py:cpu",
    "model": col,
    "real": dict(col, fd=0.1),
    "untrained": dict(col, fd=90.0),
  }
  (tmp_path / "x_cpu.json").write_text(json.dumps(r))
  out = table.table(str(tmp_path))
  assert "**1.00** (0.10 / 90.00)" in out and "**0.002±0.001**" in out and "100 scenes per set" in out


def _strings(x):
  if isinstance(x, str):
    yield x
  elif isinstance(x, dict):
    for v in x.values():
      yield from _strings(v)
  elif isinstance(x, list):
    for v in x:
      yield from _strings(v)


def test_results_hold_no_absolute_paths():
  for p in _tool("results_table").row_files(os.path.join(ROOT, "results")):
    with open(p) as f:
      r = json.load(f)
    absolute = [s for s in _strings(r) if os.path.isabs(s)]
    assert not absolute, f"{os.path.basename(p)}: {absolute}"
    assert os.path.isfile(os.path.join(ROOT, r["feature_net"]["path"]))


def test_readme_is_a_landing_page_whose_links_resolve():
  """README: what it is, a picture, the two commands, a shipped model, links; the guides live in docs/."""
  import re

  with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
  assert len(readme.splitlines()) <= 250
  assert "pip install -r requirements.txt" in readme and "python -m pytest -q" in readme
  targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
  assert targets and all(os.path.exists(os.path.join(ROOT, t)) for t in targets), targets
