"""Shipped pretrained models: listed, loaded with their sha256 checked, sampled and exported without training."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from genenv_jax import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_listing_is_one_line_per_model_name_first():
  r = subprocess.run([sys.executable, "-m", "genenv_jax.models"], cwd=ROOT, capture_output=True, text=True, timeout=60)
  lines = r.stdout.strip().splitlines()
  assert r.returncode == 0 and [ln.split()[0] for ln in lines] == models.names() and "fm_dungeon" in models.names()
  for name in models.names():
    c = models.card(name)
    if c["results"]["file"] == "results/large_scenes.json":  # whole scenes (models.ship_weights)
      assert c["results"] == models.large_row(os.path.join(ROOT, c["results"]["file"]), c["results"]["command"])
      continue
    row = json.load(open(os.path.join(ROOT, c["results"]["file"])))
    assert c["results"]["model"]["validity"] == row["model"]["validity"]  # the card's row is the committed row
    if "finished" in c["results"]:  # and so is its finishing-pass row
      assert c["results"]["finished"]["model"]["validity"] == row["render_finished"]["model"]["validity"]
  assert "with --render=finished" in lines[models.names().index("fm_dungeon")]
  # A card whose row is whole scenes says so (not a single-window validity beside the others').
  assert (
    "whole 1024x1024 scenes: coarse FD 10.47 (real 4.72), largest water body 0.087"
    in lines[models.names().index("fm_city_hier3_field")]
  )
  total = sum(os.path.getsize(os.path.join(models.WEIGHTS_DIR, f)) for f in os.listdir(models.WEIGHTS_DIR))
  assert total < 50e6


def test_a_whole_scene_card_row_takes_its_worlds_real_set_whoever_drew_it_last(tmp_path):
  """``tools/large_scenes.py`` keeps one real row per world, size and scene count, with the last command that drew
  it; a card's row still holds that real set (and not another size's or count's), and an unknown command is named."""

  def r(cmd, s, size="1024x1024", n=5, fd=1.0):
    return {"command": cmd, "set": s, "world": "city_regions", "scene_size": size, "num_scenes": n, "coarse_fd": fd}

  rows = [r("a", "model", fd=10.0), r("a", "untrained", fd=140.0), r("b", "model", fd=8.0), r("b", "real", fd=4.7),
          r("c", "real", n=3, fd=9.0), r("c", "real", size="256x256", fd=7.0)]  # fmt: skip
  path = tmp_path / "large_scenes.json"
  path.write_text(json.dumps(rows))
  row = models.large_row(str(path), "a")
  assert (row["model"]["coarse_fd"], row["untrained"]["coarse_fd"], row["real"]["coarse_fd"]) == (10.0, 140.0, 4.7)
  assert models.large_row(str(path), "b")["real"]["coarse_fd"] == 4.7
  with pytest.raises(ValueError, match="no rows with the command 'z'"):
    models.large_row(str(path), "z")


def test_a_shipped_model_samples_what_its_trained_rules_expect():
  model = models.load("fm_dungeon")
  x = np.asarray(model.family.sample(model.params, jax.random.PRNGKey(0), 4))
  dec = model.layout.decode(x)
  assert dec["labels"].shape == (4, 32, 32) and model.world.name == "dungeon"
  # Trained, not random: its samples hold rooms (the rule it passes 99.7% of the time), the untrained model none.
  assert np.mean([model.world.validity(lab)["has_rooms"] for lab in dec["labels"]]) >= 0.5


@pytest.mark.parametrize(
  "name,world,n", [("fm_terrain_hier", "terrain_regions", 2), ("fm_city_hier", "city_regions", 2),
                   ("fm_city_hier3", "city_regions", 3), ("fm_city_hier3_field", "city_regions", 3)]
)  # fmt: skip
def test_a_shipped_hierarchical_model_loads_every_level_trained(name, world, n):
  """Every level's network gets its weights (an untrained level's velocity is 0): coarse and fine, and the top.
  ``fm_city_hier3_field`` (shipped from another parameter file of ``fm_city_hier3``'s network,
  ``models.ship_weights``): its coarse level draws the river field, its card samples as it was measured."""
  from genenv_jax import canvas

  model = models.load(name)
  levels = canvas._levels(model)
  assert len(levels) == n and model.world.name == world
  hr = model.family.extras["hier"]
  if name == "fm_city_hier3_field":
    assert (hr.field, hr.coarse_channels, hr.river_share, hr.fine_temperature) == (4, hr.channels + 1, 0.5, 0.4)
    assert (hr.prune_class, hr.min_water_blocks) == (4, 5)  # its card samples as it was measured
    assert models.card(name)["base"] == "fm_city_hier3"
    shipped = models.load("fm_city_hier3").params
    assert all(
      np.array_equal(a, b) for a, b in zip(jax.tree.leaves(model.params["fine"]), jax.tree.leaves(shipped["fine"]))
    )
  rng = np.random.default_rng(0)
  for cv in levels:
    x = rng.standard_normal((1, cv.window, cv.window, cv.channels)).astype(np.float32)
    v = jax.jit(cv.velocity)(model.params, x, np.full((1,), 0.5, np.float32), np.zeros((1,), np.int32))
    assert np.abs(np.asarray(v)).mean() > 1e-3


def test_the_tools_comparing_models_load_each_at_its_temperatures_and_name_a_bad_list():
  """``large_eval.load_models`` (tools/region_picture.py, tools/large_spread.py): one fine (and upper) temperature
  and ``hier.min_water_blocks`` per model."""
  from genenv_jax import large_eval

  plain, cold = large_eval.load_models(names=["fm_city_hier3", "fm_city_hier3"], fine_temperatures=["1", "0.6"])
  assert plain.family.extras["hier"].fine_temperature == 1.0 and cold.family.extras["hier"].fine_temperature == 0.6
  assert large_eval.cache_key(cold) == large_eval.cache_key(plain) + "-fine0.6"
  (warm,) = large_eval.load_models(names=["fm_city_hier3"], fine_temperatures=["0.6"], upper_temperatures=["1.3"])
  assert large_eval.cache_key(warm) == large_eval.cache_key(plain) + "-fine0.6-upper1.3"
  # hier.min_water_blocks, one per model (a card from before the key reads 0): pruned scenes keyed apart.
  (pruned,) = large_eval.load_models(names=["fm_city_hier3"], min_water_blocks=["5"])
  assert pruned.family.extras["hier"].min_water_blocks == 5 and plain.family.extras["hier"].min_water_blocks == 0
  assert large_eval.cache_key(pruned) == large_eval.cache_key(plain) + "-prune5"
  bad = [  # (keyword, values, what the error says)
    ("fine_temperatures", ["1", "0.6"], r"fine_temperature=1,0.6: give one per model \(1: workdirs first"),
    ("fine_temperatures", ["abc"], r"fine_temperature=abc: must be numbers in \(0, 1\]"),
    ("fine_temperatures", ["1.5"], r"--fine_temperature=1.5: must be a number in \(0, 1\]"),
    ("upper_temperatures", ["1", "1.3"], r"upper_temperature=1,1.3: give one per model \(1: workdirs first"),
    ("upper_temperatures", ["2.5"], r"--upper_temperature=2.5: must be a number in \(0, 2\]"),
    ("weights", ["a.npz", "b.npz"], r"weights=a.npz,b.npz: give one per --model \(1; '' for its own"),
    ("weights", ["/nonexistent.npz"], r"weights='/nonexistent.npz': no such file"),
    ("min_water_blocks", ["5", "3"], r"min_water_blocks=5,3: give one per model \(1: workdirs first"),
    ("min_water_blocks", ["-1"], r"--min_water_blocks=-1: must be an int >= 0"),
  ]
  for key, values, match in bad:
    with pytest.raises(ValueError, match=match):
      large_eval.load_models(names=["fm_city_hier3"], **{key: values})
  with pytest.raises(ValueError, match="no model: give --workdir=W or --model=NAME"):
    large_eval.load_models()


def test_damaged_and_unknown_models_are_refused_by_name(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match=r"model='nope': not a shipped model; shipped: \["):
    models.load("nope")
  copy = tmp_path / "weights"
  shutil.copytree(models.WEIGHTS_DIR, copy)
  with open(copy / "fm_dungeon.npz", "r+b") as f:
    f.seek(1000)
    f.write(b"\x00damaged\x00")
  monkeypatch.setattr(models, "WEIGHTS_DIR", str(copy))
  with pytest.raises(ValueError, match=r"model='fm_dungeon': .*fm_dungeon.npz is damaged \(sha256"):
    models.load("fm_dungeon")


def test_other_weights_for_a_shipped_network_load_and_foreign_ones_are_named(tmp_path):
  """``models.load(NAME, weights=FILE)``: the file's values, not the shipped ones (tools/coarse_more_steps.py)."""
  model = models.load("fm_dungeon")
  arrays = models.arrays_of(model.params)
  k = sorted(arrays)[0]
  arrays[k] = arrays[k] + 1.0
  np.savez(tmp_path / "w.npz", **arrays)
  other = models.load("fm_dungeon", weights=str(tmp_path / "w.npz"))
  got = models.arrays_of(other.params)
  np.testing.assert_array_equal(got[k], arrays[k])
  assert all(np.array_equal(got[j], arrays[j]) for j in arrays)
  with pytest.raises(ValueError, match=r"weights='.*nope.npz': no such file"):
    models.load("fm_dungeon", weights=str(tmp_path / "nope.npz"))
  with pytest.raises(ValueError, match=r"weights do not fit the card's network at .*w.npz is not fm_props's network"):
    models.load("fm_props", weights=str(tmp_path / "w.npz"))


def test_sample_py_writes_a_dataset_and_an_export_from_a_shipped_model(tmp_path):
  """On a fresh checkout, with no training: the adoption issue's first check (one CPU device, as a user has)."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  out = tmp_path / "ds"
  r = subprocess.run(
    [sys.executable, "sample.py", "--model=fm_dungeon", f"--output={out}", "--num_samples=16"],
    cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
  )  # fmt: skip
  assert r.returncode == 0, r.stderr
  import tensorflow_datasets as tfds

  ds = tfds.builder_from_directory(str(out)).as_data_source("train")
  assert len(ds) == 16 and ds[0]["labels"].shape == (32, 32)
  exp = tmp_path / "exp"
  r = subprocess.run(
    [sys.executable, "sample.py", "--model=fm_dungeon", f"--output={exp}", "--scene_size=33x33", "--export=unity",
     "--render=finished"],
    cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
  )  # fmt: skip
  assert r.returncode == 0, r.stderr
  assert os.path.getsize(exp / "unity" / "terrain.raw") == 33 * 33 * 2
  settings = json.load(open(exp / "export.json"))
  assert settings["model"] == "fm_dungeon" and settings["render"] == "finished"  # the levels' finishing pass


def test_large_scenes_of_a_sprite_world_are_refused(tmp_path):
  """A 96x96 canvas of the props model was smeared stripes, not a place: refused by name instead."""
  from genenv_jax import exports, tiling

  model = models.load("fm_props")
  with pytest.raises(ValueError, match=r"world 'props' draws one sprite per frame"):
    tiling.write_large_scene(model, str(tmp_path / "big"), 96, 96)
  with pytest.raises(ValueError, match=r"world 'props' draws one sprite per frame"):
    exports.check_model(model, ["tiled"], (33, 33))
  assert not (tmp_path / "big").exists()


def test_sprites_drawn_by_the_world_need_a_world_with_a_renderer(tmp_path):
  """sample.py --export=sprites --render=world colours the sampled part labels by the world's renderer
  (characters); props have no renderer: said by name before anything is sampled or written."""
  from genenv_jax import exports

  model = models.load("fm_props")
  with pytest.raises(ValueError, match=r"render='world': .* props has none"):
    exports.export_sprites(str(tmp_path / "s"), None, None, 4, 0, None, {}, model=model, cond=0, render="world")
  assert not (tmp_path / "s").exists()
