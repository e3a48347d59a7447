"""Own data in sibling layers: rgb/, height/ (16-bit PNG, .npy metres), labels/ (palette or RGB + classes.json)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from genenv_jax import training
from genenv_jax.config_utils import load_config
from genenv_jax.data import sources
from genenv_jax.scenes import get_world

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TERRAIN = get_world("terrain")


def write_folder(root, n=40, size=16, height="png16", labels="palette", classes=True):
  for d in ("rgb", "height", "labels"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
  if classes:
    entries = [{"name": a, "colour": [int(v) for v in c]} for a, c in zip(TERRAIN.class_names, TERRAIN.palette)]
    with open(os.path.join(root, "classes.json"), "w") as f:
      json.dump({"classes": entries}, f)
  scenes = {}
  for i in range(n):
    sc = TERRAIN.generate(500 + i, size)
    name = f"s{i:03d}"
    scenes[name] = sc
    Image.fromarray(sc.rgb).save(os.path.join(root, "rgb", name + ".png"))
    if height == "png16":
      Image.fromarray(np.round(sc.height * 65535).astype(np.uint16)).save(os.path.join(root, "height", name + ".png"))
    else:
      np.save(os.path.join(root, "height", name + ".npy"), 300.0 + 1000.0 * sc.height.astype(np.float64))
    if labels == "palette":
      im = Image.fromarray(sc.labels.astype(np.uint8), "P")
      im.putpalette([int(v) for c in TERRAIN.palette for v in c])
      im.save(os.path.join(root, "labels", name + ".png"))
    else:
      Image.fromarray(TERRAIN.palette[sc.labels]).save(os.path.join(root, "labels", name + ".png"))
  return scenes


def cfg(path, channels=("rgb", "labels", "height"), *more):
  return load_config(
    os.path.join(ROOT, "configs/fm_folder.py:smoke"), [f"data.path={str(path)!r}", f"data.channels={channels!r}", *more]
  )


@pytest.mark.parametrize("height,labels", [("png16", "palette"), ("npy", "rgb")])
def test_layers_are_read_exactly_and_split_by_name(tmp_path, height, labels):
  scenes = write_folder(str(tmp_path), height=height, labels=labels)
  c = cfg(tmp_path)
  train, test = sources.make_source(c.data, "train"), sources.make_source(c.data, "test")
  assert len(train) + len(test) == 40 and len(test) >= 1
  assert train.label_classes == TERRAIN.class_names
  np.testing.assert_array_equal(train.palette, TERRAIN.palette)
  names = [n for n in sorted(scenes) if sources.split_of(n, c.data.test_fraction) == "train"]
  rec = train.get([0])
  sc = scenes[names[0]]
  np.testing.assert_array_equal(rec["image"][0], sc.rgb)
  np.testing.assert_array_equal(rec["labels"][0], sc.labels)
  assert rec["height"].dtype == np.uint16  # 16-bit records: the file's 16-bit steps survive
  if height == "png16":
    want = np.round(sc.height * 65535)
  else:
    lo, hi = train.height_range_m
    assert 300.0 <= lo < hi <= 1300.0
    want = np.round((300.0 + 1000.0 * sc.height - lo) / (hi - lo) * 65535)
  np.testing.assert_allclose(rec["height"][0], want, atol=1)
  su = training.Setup(
    cfg(tmp_path, ("rgb", "labels", "height"), "data.test_fraction=0.3")
  )  # the layout takes classes.json's classes; the labels are one-hot channels
  assert su.layout.class_names == TERRAIN.class_names and su.spec.channels == 3 + 6 + 1
  assert su.spec.one_hot == (3, 9)


def test_bad_layered_folders_are_named(tmp_path):
  write_folder(str(tmp_path / "a"), n=10, classes=False)
  with pytest.raises(ValueError, match="has a labels/ layer but no classes.json"):
    sources.make_source(cfg(tmp_path / "a").data, "train")
  c = cfg(tmp_path / "a", ("rgb", "height"))
  assert len(sources.make_source(c.data, "train")) > 0  # labels not asked for: no classes.json needed
  os.makedirs(tmp_path / "b" / "rgb")
  Image.fromarray(np.zeros((16, 16, 3), np.uint8) + 9).save(tmp_path / "b" / "rgb" / "x.png")
  with pytest.raises(ValueError, match=r"is a flat folder of images; heights and label maps come from sibling layers"):
    sources.make_source(cfg(tmp_path / "b", ("rgb", "height")).data, "train")
  write_folder(str(tmp_path / "c"), n=6)
  os.rename(tmp_path / "c" / "height", tmp_path / "c" / "elevation")
  os.makedirs(tmp_path / "c" / "height")
  with pytest.raises(ValueError, match=r"no NAME is present in every layer of \['rgb', 'labels', 'height'\]"):
    sources.make_source(cfg(tmp_path / "c").data, "train")
  write_folder(str(tmp_path / "d"), n=6, labels="rgb")
  bad = np.asarray(Image.open(tmp_path / "d" / "labels" / "s000.png")).copy()
  bad[2, 3] = (1, 2, 3)
  Image.fromarray(bad).save(tmp_path / "d" / "labels" / "s000.png")
  with pytest.raises(ValueError, match=r"s000.png'.*colour \(1, 2, 3\) at row 2, column 3 is not in classes.json"):
    sources.make_source(cfg(tmp_path / "d", ("rgb", "labels"), "data.test_fraction=0.01").data, "train")


def test_geotiff_heights_keep_metres_fill_nodata_and_give_the_pixel_size(tmp_path):
  import tifffile

  write_folder(str(tmp_path), n=12, height="npy")
  for f in sorted(os.listdir(tmp_path / "height")):
    a = np.load(tmp_path / "height" / f).astype(np.float32)
    if f == "s000.npy":
      a[0, :4] = -9999.0
    os.remove(tmp_path / "height" / f)
    tags = [(33550, "d", 3, (30.0, 30.0, 0.0), False), (42113, "s", 0, "-9999", False)]
    tifffile.imwrite(tmp_path / "height" / f.replace(".npy", ".tif"), a, extratags=tags)
  src = sources.make_source(cfg(tmp_path, ("rgb", "height"), "data.test_fraction=0.01").data, "train")
  assert src.metres_per_pixel == 30.0
  lo, hi = src.height_range_m
  assert lo >= 300.0 - 1e-3 and hi <= 1300.0 + 1e-3  # the nodata value is not the lowest height
