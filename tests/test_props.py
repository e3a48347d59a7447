"""The props world: every real prop passes every rule, broken ones fail the right rule, kinds are recognisable."""

import numpy as np
import pytest

from genenv_jax.scenes import get_world, props


@pytest.mark.parametrize("size,per_kind", [(32, 12), (64, 4), (128, 1)])
def test_every_real_prop_of_every_kind_passes_every_rule(size, per_kind):
  w = get_world("props")
  for k in range(len(props.KINDS)):
    for seed in range(per_kind):
      sc = w.generate_class(seed, size, k)
      assert sc.scene_class == k and all(w.validity(sc.labels).values()), (props.KINDS[k], seed, w.validity(sc.labels))
  kinds = {w.generate(s, 32).scene_class for s in range(200)}
  assert kinds == set(range(len(props.KINDS)))


def _kind(name, seed=1, size=32):
  return get_world("props").generate_class(seed, size, props.KINDS.index(name)).labels.copy()


def test_broken_props_fail_the_right_rule():
  w = get_world("props")
  # A blade off its hilt: the sword's head moved up, away from the guard.
  sword = _kind("sword")
  head = sword == props.HEAD
  off = sword.copy()
  off[head] = props.BACKGROUND
  ys, xs = np.nonzero(head)
  shift = ys.min() - 1
  off[ys - shift, xs] = props.HEAD
  off[(off == props.HEAD) & ~np.isin(np.arange(32)[:, None], ys - shift)] = props.BACKGROUND
  v = w.validity(off)
  assert not v["parts_attached"] and not v["one_piece"]
  # A handle floating beside the head of a hammer.
  hammer = _kind("hammer")
  cut = hammer.copy()
  rows = np.nonzero((hammer == props.HANDLE).any(1))[0]
  cut[rows[:3]] = np.where(cut[rows[:3]] == props.HANDLE, props.BACKGROUND, cut[rows[:3]])
  v = w.validity(cut)
  assert not v["parts_attached"]
  # A lopsided shield.
  shield = _kind("shield")
  lop = shield.copy()
  cols = np.nonzero((shield == props.BODY).any(0))[0]
  lop[:, cols[: len(cols) // 3]] = props.BACKGROUND
  assert not w.validity(lop)["body_symmetric"]
  # Out of the frame.
  table = _kind("table")
  assert not w.validity(np.roll(table, 12, axis=1))["inside_frame"]
  assert not w.validity(np.zeros_like(table))["has_item"]


def test_the_kind_classifier_recognises_real_props():
  clf = props.KindClassifier(per_kind=20)
  w = get_world("props")
  truth = np.array([k for k in range(len(props.KINDS)) for _ in range(6)])
  labels = np.stack([w.generate_class(10**6 + i, 32, k).labels for i, k in enumerate(truth)])
  assert (clf.predict(labels) == truth).mean() >= 0.95


def test_props_export_as_a_sprite_sheet(tmp_path):
  import json
  import subprocess
  import sys

  from conftest import ROOT

  out = tmp_path / "sheet"
  r = subprocess.run(
    [sys.executable, "sample.py", "--world=props", f"--output={out}", "--num_samples=16", "--export=sprites"],
    cwd=ROOT, capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert r.returncode == 0, r.stderr
  atlas = next(p for p in (out / "sprites").iterdir() if p.suffix == ".json")
  frames = json.load(open(atlas))["frames"]
  assert len(frames) == 16


@pytest.mark.parametrize("name", ["fm_dungeon", "fm_caves", "fm_props"])
def test_the_new_worlds_configs_build_their_layout_and_family(name):
  """Each config's data, layout and family are made before compiling (the :cpu runs are measured in results/)."""
  import os

  from conftest import ROOT

  from genenv_jax import config_utils, families
  from genenv_jax.config_utils import load_config

  for variant in ("smoke", "cpu"):
    cfg = load_config(os.path.join(ROOT, f"configs/{name}.py:{variant}"))
    config_utils.validate(cfg)
    assert cfg.data.image_size >= 32
  world = get_world(cfg.data.world)
  lay_channels = 3 + len(world.class_names) + (1 if "height" in cfg.data.channels else 0)
  spec = families.base.DataSpec(32, lay_channels, len(world.scene_class_names) if cfg.data.conditional else 1)
  fam = families.make(cfg, spec)
  assert fam.canvas is not None  # flow matching: large scenes through the canvas
  if name == "fm_props":
    assert cfg.data.conditional and len(world.scene_class_names) == 14
