"""The shipped scene feature network: it recognises scenes, and its metrics react to known degradations."""

import os
import shutil

import numpy as np
import pytest

from genenv_jax import parallel, scenes
from genenv_jax.metrics import degradations, feature_training, features
from genenv_jax.metrics import feature_metrics as fm

N = 400
TEST_SEEDS = 10**9  # the world datasets' test split starts here


@pytest.fixture(scope="module")
def net():
  return features.FeatureNet(mesh=parallel.make_mesh(8), chunk=32)


def _city(first_seed, n, drop_class=None):
  return degradations.world_rgb("city", first_seed, n, drop_class=drop_class)


@pytest.fixture(scope="module")
def city_sets(net):
  ref, held = _city(0, N), _city(TEST_SEEDS, N)
  return net.features(ref), held


def test_shipped_weights_recognise_unseen_scenes(net):
  # Seeds far from the feature net's training and validation range.
  meta = net.meta
  assert meta["val"]["world_accuracy"] > 0.98
  rgb, kind = [], []
  for name in meta["worlds"]:
    world = scenes.get_world(name)
    seen = 0
    for s in range(200):
      sc = world.generate(3 * 10**9 + s, 32)
      k = f"{name}/{world.scene_class_names[sc.scene_class]}"
      if k not in meta["kinds"]:  # a class added after the network was trained (characters v2: animals, robots)
        continue
      rgb.append(sc.rgb)
      kind.append(meta["kinds"].index(k))
      seen += 1
      if seen == 50:
        break
    assert seen == 50, name
  pred = net.logits(np.stack(rgb)).argmax(-1)
  world_of = np.array([k.split("/")[0] for k in meta["kinds"]])
  assert (world_of[pred] == world_of[np.array(kind)]).mean() > 0.97
  assert (pred == np.array(kind)).mean() > 0.8


def test_metrics_sit_at_their_floor_for_real_scenes_and_grow_under_degradation(net, city_sets):
  ref, held = city_sets
  mesh = net.mesh
  floor = fm.compare(ref, net.features(held), mesh)
  blur = fm.compare(ref, net.features(degradations.blur(held)), mesh)
  noise = fm.compare(ref, net.features(degradations.noise(held)), mesh)
  for bad in (blur, noise):
    assert bad["fd"] > 3 * floor["fd"]
    assert bad["kid"] > floor["kid"] + 5 * floor["kid_std"]
    assert bad["precision"] < floor["precision"] - 0.1
  assert floor["precision"] > 0.7 and floor["recall"] > 0.7
  assert abs(floor["kid"]) < 3 * floor["kid_std"]


def test_dropping_a_scene_class_lowers_recall_and_raises_fd(net, city_sets):
  ref, held = city_sets
  world = scenes.get_world("city")
  coast = world.scene_class_names.index("coast")
  dropped = _city(TEST_SEEDS, N, drop_class=coast)
  floor = fm.compare(ref, net.features(held), net.mesh)
  mode_drop = fm.compare(ref, net.features(dropped), net.mesh)
  assert mode_drop["recall"] < floor["recall"] - 0.05
  assert mode_drop["fd"] > 2 * floor["fd"]
  assert mode_drop["kid"] > floor["kid"] + 3 * floor["kid_std"]


def test_features_agree_on_one_and_eight_devices(net):
  rgb = _city(5, 37)
  one = features.FeatureNet(mesh=parallel.make_mesh(1), chunk=32).features(rgb)
  np.testing.assert_allclose(net.features(rgb), one, rtol=1e-4, atol=1e-5)


def test_resizing_adds_no_blur_and_bad_input_is_named(net):
  x = _city(7, 5)
  same = net.features(x)
  # A 2x (64 px) or 4x rendering of the same pixels is the same scene to the network.
  np.testing.assert_allclose(net.features(x.repeat(2, 1).repeat(2, 2)), same, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(net.features(x.repeat(4, 1).repeat(4, 2)), same, rtol=1e-5, atol=1e-5)
  # 16 px scenes are read at 32 px by pixel repetition.
  small = x[:, ::2, ::2]
  np.testing.assert_allclose(net.features(small), net.features(small.repeat(2, 1).repeat(2, 2)), atol=1e-5)
  assert net.features(np.zeros((3, 64, 48, 3), np.uint8)).shape == (3, net.dim)  # any other size: resized
  with pytest.raises(ValueError, match="expected uint8"):
    net.features(np.zeros((3, 32, 32, 3), np.float32))


def test_corrupt_or_missing_weights_are_refused(tmp_path):
  dst = tmp_path / "f.npz"
  shutil.copy(features.DEFAULT_WEIGHTS, dst)
  shutil.copy(os.path.splitext(features.DEFAULT_WEIGHTS)[0] + ".json", tmp_path / "f.json")
  features.FeatureNet(str(dst), parallel.make_mesh(1))
  data = bytearray(dst.read_bytes())
  data[-100] ^= 1
  dst.write_bytes(bytes(data))
  with pytest.raises(ValueError, match="sha256"):
    features.FeatureNet(str(dst), parallel.make_mesh(1))
  with pytest.raises(FileNotFoundError, match="train_feature_net"):
    features.FeatureNet(str(tmp_path / "none.npz"), parallel.make_mesh(1))


def test_training_is_reproducible(tmp_path):
  a, meta_a = feature_training.train(num_per_world=8, num_val_per_world=4, steps=3, batch=8, width=8)
  b, meta_b = feature_training.train(num_per_world=8, num_val_per_world=4, steps=3, batch=8, width=8)
  features.save(str(tmp_path / "a.npz"), a, meta_a)
  features.save(str(tmp_path / "b.npz"), b, meta_b)
  assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
  assert meta_a["val"] == meta_b["val"]
  loaded = features.FeatureNet(str(tmp_path / "a.npz"), parallel.make_mesh(1))
  assert loaded.features(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 32)
