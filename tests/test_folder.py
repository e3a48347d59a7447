"""Your own images: held-out split, classes from subfolders, conditional sampling by name, C2ST."""

import os

import jax
import numpy as np
import pytest
from PIL import Image

from genenv_jax.data import sources

COLOURS = {"grass": (40, 170, 60), "sand": (220, 190, 120), "water": (40, 80, 200)}


def _class_folder(root, per_class=30, size=20, seed=0):
  """Three subfolders of noisy images, one dominant colour each."""
  rng = np.random.default_rng(seed)
  for name, rgb in COLOURS.items():
    os.makedirs(root / name, exist_ok=True)
    for i in range(per_class):
      img = np.clip(np.array(rgb) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
      Image.fromarray(img).save(root / name / f"{name}_{i:03d}.png")
  return root


def test_held_out_split_is_deterministic_disjoint_and_stable(tmp_path):
  root = _class_folder(tmp_path / "imgs", per_class=20, size=8)
  train = sources.FolderSource(str(root), 8, "train", 0.25)
  test = sources.FolderSource(str(root), 8, "test", 0.25)
  assert set(train.files).isdisjoint(test.files)
  assert sorted(train.files + test.files) == sorted(sources.list_images(str(root)))
  assert 5 <= len(test) <= 25  # about a quarter of 60
  again = sources.FolderSource(str(root), 8, "test", 0.25)
  assert (
    again.files == test.files and (again.get(range(len(again)))["image"] == test.get(range(len(test)))["image"]).all()
  )
  # Classes: sorted subfolder names; labels follow the subfolder.
  assert train.class_names == ("grass", "sand", "water") and train.num_classes == 3
  labels = train.get(range(len(train)))["label"]
  assert [train.class_names[c] for c in labels] == [f.split("/")[0] for f in train.files]
  # Adding files moves no existing file between the splits.
  noise = np.random.default_rng(5).integers(0, 255, (8, 8, 3), dtype=np.uint8)
  Image.fromarray(noise).save(root / "sand" / "new_one.png")
  Image.fromarray(noise[::-1]).save(root / "water" / "another.png")
  grown = sources.FolderSource(str(root), 8, "test", 0.25)
  assert set(test.files) <= set(grown.files)
  assert set(grown.files) - set(test.files) <= {"sand/new_one.png", "water/another.png"}
  # An explicit test folder replaces the split; its classes must be the training folder's.
  other = _class_folder(tmp_path / "held", per_class=3, size=8, seed=1)
  explicit = sources.FolderSource(str(root), 8, "test", 0.25, str(other))
  assert len(explicit) == 9 and "test_path" in explicit.description
  assert len(sources.FolderSource(str(root), 8, "train", 0.25, str(other))) == 62
  os.makedirs(other / "snow")
  Image.new("RGB", (8, 8)).save(other / "snow" / "x.png")
  with pytest.raises(ValueError, match=r"data.test_path=.*subfolders must be classes of data.path.*snow"):
    sources.FolderSource(str(root), 8, "test", 0.25, str(other))


def test_folder_config_errors(smoke_config, tmp_path):
  from genenv_jax import config_utils, training

  root = str(tmp_path)
  with pytest.raises(ValueError, match=r"data.path='': data.source='folder' needs the folder"):
    config_utils.validate(config_utils.load_config("configs/gan_folder.py:smoke"))
  folder = ["data.source='folder'", f"data.path={root!r}", "data.channels=('rgb',)"]
  with pytest.raises(ValueError, match=r"data.test_fraction=0.0 with no data.test_path: evaluation would score"):
    training.Setup(smoke_config(*folder, "data.test_fraction=0.0"))
  with pytest.raises(ValueError, match=r"data.test_fraction=1.5: must be in \[0, 1\)"):
    training.Setup(smoke_config(*folder, "data.test_fraction=1.5"))
  for i in range(40):
    Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / f"{i}.png")
  with pytest.raises(ValueError, match=r"data.conditional=True: the data source has no scene classes \(put the"):
    training.Setup(smoke_config(*folder, "data.conditional=True", "data.test_fraction=0.5"))


@pytest.fixture(scope="module")
def conditional_folder_run(tmp_path_factory, data_dir):
  """A conditional GAN trained briefly on a 3-class folder (the test's own images)."""
  from genenv_jax import config_utils, training

  tmp = tmp_path_factory.mktemp("folder_run")
  root = _class_folder(tmp / "imgs", per_class=40)
  cfg = config_utils.load_config(
    "configs/gan_folder.py:smoke",
    [
      f"data.path={str(root)!r}",
      "data.conditional=True",
      "data.test_fraction=0.25",
      "train.num_steps=120",
      "train.eval_every=120",
      "train.ckpt_every=120",
      "train.log_every=40",
      "train.eval_samples=24",
      "train.batch_size=16",
      "optim.g_lr=0.002",
      "optim.d_lr=0.002",
      "optim.warmup_steps=1",
      "gan.augment=False",
      "train.feature_net='none'",  # evaluate_workdir below scores it; no feature metrics in the loop (CI time)
      "mesh.num_devices=1",  # the same steps as on 8 devices, compiled faster
    ],
  )
  work = str(tmp / "run")
  training.run(cfg, work)
  return root, work


def test_conditional_gan_on_class_folders_samples_by_class_name(conditional_folder_run, tmp_path):
  import jax

  from genenv_jax import synthesis, trained

  root, work = conditional_folder_run
  model = trained.load(work)
  assert model.scene_classes == ("grass", "sand", "water")
  assert model.cond_index("sand") == 1 and model.cond_index("2") == 2 and model.cond_index("-1") == -1
  with pytest.raises(ValueError, match=r"cond='snow': not a class of this model; classes are 0=grass, 1=sand"):
    model.cond_index("snow")
  # A nearest-centroid classifier of the real classes (mean colour) recognises the class asked for.
  real = sources.FolderSource(str(root), 16, "train", 0.25)
  raw = real.get(range(len(real)))
  feats = raw["image"].reshape(len(real), -1, 3).mean(1)
  centroids = np.stack([feats[raw["label"] == c].mean(0) for c in range(3)])
  hits = 0
  for c in range(3):
    x = jax.jit(model.family.sample, static_argnums=(2,))(model.params, jax.random.PRNGKey(c), 32, c)
    rgb = model.layout.decode(np.asarray(x))["rgb"].reshape(32, -1, 3).mean(1)
    hits += int((np.linalg.norm(rgb[:, None] - centroids[None], axis=-1).argmin(1) == c).sum())
  assert hits / 96 > 0.6, hits  # chance is 1/3
  # sample.py's path: the class by name, recorded in the dataset.
  out = str(tmp_path / "water")
  synthesis.run(model, out, 16, seed=0, batch_size=16, shard_size=16, cond=model.cond_index("water"), chunk=2)
  import tensorflow_datasets as tfds

  ds = tfds.builder_from_directory(out).as_data_source("train")
  water = np.stack([ds[i]["image"] for i in range(16)]).reshape(16, -1, 3).mean(1)
  assert (np.linalg.norm(water[:, None] - centroids[None], axis=-1).argmin(1) == 2).mean() > 0.6


def test_eval_on_a_folder_scores_held_out_images_never_the_training_set(conditional_folder_run):
  from genenv_jax import evaluation

  _, work = conditional_folder_run
  r = evaluation.evaluate_workdir(work, 24, batch=8)
  assert "held out by a hash" in r["real_set"] and "minus the 25% held out" in r["reference_set"]
  assert r["real"]["fd"] > 1e-3  # a set against itself scores 0
  assert 0.3 <= r["real"]["c2st/pixels"] <= 0.75 and r["untrained"]["c2st/pixels"] > 0.9
  assert {"in_domain", "real_looks_clean", "note"} <= set(r["feature_net_domain"])
  assert any(g.endswith("samples_by_class.png") for g in r["grids"])


def test_flow_folder_config_measures_bits_per_dim_on_held_out_images(tmp_path, data_dir):
  from genenv_jax import config_utils, evaluation, training

  root = _class_folder(tmp_path / "imgs", per_class=16, size=16)
  cfg = config_utils.load_config(
    "configs/flow_folder.py:smoke",
    [f"data.path={str(root)!r}", "data.test_fraction=0.3", "train.num_steps=2", "train.eval_every=2",
     "train.feature_net='none'"],
  )  # fmt: skip
  training.run(cfg, str(tmp_path / "run"))
  # Bits/dim is what this test reads: no feature network (nor the own space it would train) (CI time).
  r = evaluation.evaluate_workdir(str(tmp_path / "run"), 8, batch=8, feature_net="none")
  assert "held out by a hash" in r["real_set"]
  assert r["test_likelihood"] and all(np.isfinite(v) and v > 0 for v in r["test_likelihood"].values())


def _gray_folder(root, n=24, size=16, seed=0):
  """Gray PNGs (mode L): a bright or a dark blob on noise."""
  rng = np.random.default_rng(seed)
  os.makedirs(root, exist_ok=True)
  yy, xx = np.mgrid[0:size, 0:size]
  for i in range(n):
    blob = np.exp(-((yy - rng.uniform(4, 12)) ** 2 + (xx - rng.uniform(4, 12)) ** 2) / 8.0)
    img = np.clip(60 + 150 * blob * (1 if i % 2 else -0.3) + rng.normal(0, 10, (size, size)), 0, 255)
    Image.fromarray(img.astype(np.uint8), "L").save(root / f"g_{i:03d}.png")
  return root


def test_a_gray_folder_read_as_rgb_is_named_and_as_gray_is_one_channel_counted_once(tmp_path, caplog):
  from genenv_jax import layout
  from genenv_jax.metrics import baselines

  root = _gray_folder(tmp_path / "gray")
  with caplog.at_level("WARNING"):
    rgb = sources.FolderSource(str(root), 16, "train", 0.3)
  assert "are gray (R = G = B)" in caplog.text and "data.channels" in caplog.text
  gray_train = sources.FolderSource(str(root), 16, "train", 0.3, gray=True)
  gray_test = sources.FolderSource(str(root), 16, "test", 0.3, gray=True)
  assert gray_train.get([0])["image"].shape == (1, 16, 16)
  np.testing.assert_array_equal(gray_train.get([0])["image"], rgb.get([0])["image"][..., 0])  # L keeps gray values
  lay = layout.Layout.for_data(("gray",))
  assert lay.num_channels == 1
  x = lay.encode(gray_train.get([0, 1]))
  assert x.shape == (2, 16, 16, 1)
  dec = lay.decode(x)
  assert dec["rgb"].shape == (2, 16, 16, 3) and (dec["rgb"][..., 0] == dec["rgb"][..., 2]).all()
  np.testing.assert_array_equal(dec["rgb"][..., 0], gray_train.get([0, 1])["image"])
  # The per-pixel baseline on gray data is an independent categorical (add-one smoothing) per pixel over the
  # 16x16 gray values, computed here by hand: bits over 256 dims per image (the source has one channel, above),
  # the same dims the one-channel model's bits/dim use.
  tr, te = gray_train.get(range(len(gray_train)))["image"], gray_test.get(range(len(gray_test)))["image"]
  counts = np.ones((16 * 16, 256))
  for img in tr.reshape(len(tr), -1):
    counts[np.arange(256), img] += 1
  logp = np.log(counts / counts.sum(1, keepdims=True))
  bits = -sum(logp[np.arange(256), img].sum() for img in te.reshape(len(te), -1)) / np.log(2)
  bpd_gray = baselines.independent_pixel_bpd(gray_train, gray_test, lay)
  assert bpd_gray == pytest.approx(bits / (len(te) * 256), rel=1e-9)


def test_fm_folder_on_gray_class_folders_makes_a_one_channel_model_that_samples_each_class(tmp_path):
  """Gray images in two class folders train a conditional one-channel model (one training for both: CI time); it
  evaluates in the loop (step 2), samples each class by name, and its baseline's dimensions are the test above's."""
  from genenv_jax import config_utils, trained, training

  root = tmp_path / "gray"
  _gray_folder(root / "bright", n=16, seed=1)
  _gray_folder(root / "dark", n=16, seed=2)
  cfg = config_utils.load_config(
    "configs/fm_folder.py:smoke",
    [f"data.path={str(root)!r}", "data.channels=('gray',)", "data.conditional=True", "data.test_fraction=0.3",
     "train.num_steps=2", "train.eval_every=2", "train.feature_net='none'", "mesh.num_devices=1"],
  )  # fmt: skip
  training.run(cfg, str(tmp_path / "run"))
  m = trained.load(str(tmp_path / "run"))
  assert m.layout.channels == ("gray",) and m.spec.channels == 1
  assert m.scene_classes == ("bright", "dark") and m.spec.num_classes == 2 and m.cond_index("dark") == 1
  for cond in (0, 1):
    x = m.family.sample(m.params, jax.random.PRNGKey(0), 2, cond=cond)
    assert x.shape == (2, 16, 16, 1) and np.isfinite(np.asarray(x)).all()
  decoded = m.layout.decode(np.asarray(x))
  assert decoded["rgb"].shape == (2, 16, 16, 3) and decoded["gray"].shape == (2, 16, 16)


def test_gray_channels_are_checked():
  from genenv_jax import config_utils

  with pytest.raises(ValueError, match=r"must start with 'rgb' or 'gray'"):
    config_utils.validate(config_utils.load_config("configs/fm_folder.py:smoke", ["data.channels=('gray', 'rgb')"]))
  with pytest.raises(ValueError, match=r"the built-in worlds draw RGB"):
    config_utils.validate(config_utils.load_config("configs/fm_city.py:smoke", ["data.channels=('gray',)"]))


def test_raw_metre_16_bit_pngs_are_named_with_the_levels_they_keep(tmp_path, caplog):
  rng = np.random.default_rng(0)
  for i in range(3):  # DEM tiles in metres (300-1000 m) in 16-bit PNGs: scaled to 8 bits they keep 4 levels
    Image.fromarray((300 + rng.random((20, 20)) * 700).astype(np.uint16)).save(tmp_path / f"dem_{i}.png")
  with caplog.at_level("WARNING"):
    src = sources.FolderSource(str(tmp_path), 16, "train", 0.0, test_path=str(tmp_path))
  assert len(np.unique(src.get([0])["image"])) <= 4
  assert "dem_0.png: " in caplog.text and "-> 4" in caplog.text and "--heightmap" in caplog.text
