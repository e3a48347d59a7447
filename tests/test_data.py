"""Data: the TFDS world builder, image folders, TFDS catalog, step-determined batches."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from genenv_jax import layout, parallel
from genenv_jax.data import pipeline, sources, world_builder
from genenv_jax.data.world_builder import TEST_SEED_OFFSET
from genenv_jax.scenes import get_world


def test_world_builder_round_trip(data_dir):
  b = world_builder.prepare("city", 16, 40, 10, data_dir)
  ds = b.as_data_source()
  assert len(ds["train"]) == 40 and len(ds["test"]) == 10
  row = ds["train"][5]
  sc = get_world("city").generate(int(row["index"]), 16)
  np.testing.assert_array_equal(row["image"], sc.rgb)
  np.testing.assert_array_equal(row["labels"], sc.labels)
  assert int(ds["test"][0]["index"]) >= TEST_SEED_OFFSET


def test_encode_decode_round_trip():
  w = get_world("city")
  scs = [w.generate(i, 16) for i in range(4)]
  raw = {
    "image": np.stack([s.rgb for s in scs]),
    "labels": np.stack([s.labels for s in scs]),
    "height": np.stack([np.round(s.height * 255).astype(np.uint8) for s in scs]),
  }
  lay = layout.Layout.for_data(("rgb", "labels", "height"), w)
  assert lay.num_channels == 9 and lay.one_hot == (3, 8)
  x = lay.encode(raw)
  assert x.shape == (4, 16, 16, 9) and x.min() >= -1 and x.max() <= 1
  d = lay.decode(x)
  np.testing.assert_array_equal(d["rgb"], raw["image"])
  np.testing.assert_array_equal(d["labels"], raw["labels"])
  np.testing.assert_allclose(d["height"], raw["height"] / 255.0, atol=1e-6)
  # The on-device path gives the stored records back, and from_records the decoded form.
  rec = {k: np.asarray(v) for k, v in lay.to_records(jnp.asarray(x)).items()}
  for k in ("image", "labels"):
    np.testing.assert_array_equal(rec[k], raw[k])
  # Heights come back as 16-bit records: an 8-bit level v is exactly 257 v of 65535.
  assert rec["height"].dtype == np.uint16
  np.testing.assert_array_equal(rec["height"], raw["height"].astype(np.uint16) * 257)
  np.testing.assert_array_equal(layout.to_8bit(rec["height"]), raw["height"])
  np.testing.assert_allclose(lay.from_records(rec)["height"], d["height"], atol=1e-6)
  assert lay.tiles(d).shape == (4, 16, 48, 3)


def test_batch_is_a_pure_function_of_seed_and_step():
  ix = pipeline.StepIndexer(n=10, seed=3, global_batch=4)
  a = [ix.indices(s) for s in range(5)]
  b = [pipeline.StepIndexer(10, 3, 4).indices(s) for s in reversed(range(5))][::-1]
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  # Each epoch is a permutation: 20 draws cover every example twice.
  assert np.bincount(np.concatenate(a), minlength=10).tolist() == [2] * 10
  # A process's rows are a slice of the same global batch.
  np.testing.assert_array_equal(ix.indices(2, slice(2, 4)), a[2][2:4])


def test_loader_shards_global_batch(data_dir):
  src = sources.WorldSource("city", 16, 40, 10, data_dir, "train")
  mesh = parallel.make_mesh(8)
  loader = pipeline.Loader(src, layout.Layout(("rgb",)), 0, 16, parallel.batch_sharded(mesh))
  got = list(loader.iterate(0, 3))
  assert [s for s, _ in got] == [0, 1, 2]
  x = got[1][1]["x"]
  assert x.shape == (16, 16, 16, 3) and len(x.sharding.device_set) == 8
  np.testing.assert_array_equal(np.asarray(x), loader.host_batch(1)["x"])


def _write(path, img):
  img.save(path)
  return path


def test_image_folder_any_mode_and_size(tmp_path):
  rng = np.random.default_rng(0)
  _write(tmp_path / "rgb.png", Image.fromarray(rng.integers(0, 255, (40, 70, 3), dtype=np.uint8)))
  _write(tmp_path / "gray.jpg", Image.fromarray(rng.integers(0, 255, (90, 50), dtype=np.uint8), "L"))
  rgba = np.zeros((20, 20, 4), np.uint8)
  rgba[..., 0] = 255
  rgba[..., 3] = 128
  os.makedirs(tmp_path / "sub")
  _write(tmp_path / "sub" / "alpha.png", Image.fromarray(rgba, "RGBA"))
  (tmp_path / "notes.txt").write_text("not an image")
  src = sources.FolderSource(str(tmp_path), 32)
  assert len(src) == 3
  batch = src.get([0, 1, 2])
  assert batch["image"].shape == (3, 32, 32, 3) and batch["image"].dtype == np.uint8
  # The grayscale image has equal channels; the half-transparent red is composited on black.
  gray = batch["image"][0]
  assert (gray[..., 0] == gray[..., 1]).all()
  red = batch["image"][2]
  assert abs(int(red[..., 0].mean()) - 128) <= 2 and red[..., 1].max() == 0


def test_image_folder_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="no such folder"):
    sources.FolderSource(str(tmp_path / "missing"), 32)
  with pytest.raises(ValueError, match="no images found"):
    sources.FolderSource(str(tmp_path), 32)
  (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
  with pytest.raises(ValueError, match="none of the 1 image files could be decoded"):
    sources.FolderSource(str(tmp_path), 32)
  Image.fromarray(np.arange(192, dtype=np.uint8).reshape(8, 8, 3)).save(tmp_path / "good.png")
  src = sources.FolderSource(str(tmp_path), 16)
  assert len(src) == 1 and [os.path.basename(f) for f, _ in src.skipped] == ["broken.png"]


def test_blank_and_fully_transparent_images_are_skipped_by_name(tmp_path, caplog):
  Image.new("RGBA", (8, 8), (200, 10, 10, 0)).save(tmp_path / "clear.png")  # colour, but alpha 0 everywhere
  Image.new("RGB", (8, 8), (0, 0, 0)).save(tmp_path / "black.png")
  Image.new("L", (8, 8), 77).save(tmp_path / "flat_gray.png")
  Image.fromarray(np.arange(192, dtype=np.uint8).reshape(8, 8, 3)).save(tmp_path / "good.png")
  half = np.zeros((8, 8, 4), np.uint8)
  half[:4] = (0, 200, 0, 255)  # half transparent: has content
  Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "red.png")  # a flat colour is kept (a swatch)
  Image.fromarray(half).save(tmp_path / "half.png")
  with caplog.at_level("WARNING"):
    src = sources.FolderSource(str(tmp_path), 8)
  assert len(src) == 3
  why = {os.path.basename(f): w for f, w in src.blank}
  assert why == {
    "clear.png": "fully transparent",
    "black.png": "every pixel 0",
    "flat_gray.png": "every pixel 77",
  }
  assert "skipped 3 of 6 images with nothing in them" in caplog.text and "clear.png (fully transparent)" in caplog.text
  for f in ("good.png", "half.png", "red.png"):
    os.remove(tmp_path / f)
  with pytest.raises(ValueError, match=r"3 blank or fully transparent"):
    sources.FolderSource(str(tmp_path), 8)


def test_tfds_catalog_source_offline():
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    src = sources.TfdsCatalogSource("mnist", "train", 32, None, "image", "label")
    batch = src.get([0, 3, 5])
  assert len(src) == 12 and src.num_classes == 10
  assert batch["image"].shape == (3, 32, 32, 3) and batch["label"].shape == (3,)


def test_tfds_catalog_unprepared_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="not a prepared TFDS dataset"):
    sources.TfdsCatalogSource("mnist", "train", 32, str(tmp_path), "image", "label")


def test_process_rows_single_process():
  assert jax.process_count() == 1
  assert pipeline.process_rows(8) == slice(0, 8)


def test_sixteen_bit_and_exif_rotated_images_are_read_as_displayed(tmp_path, caplog):
  ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
  Image.fromarray(ramp).save(tmp_path / "ramp16.png")
  with Image.open(tmp_path / "ramp16.png") as img:
    assert img.mode.startswith("I")
    x = sources.to_rgb_square(img, 32)
  # Scaled, not clipped: the ramp still climbs from black to white.
  np.testing.assert_allclose(x[0, :, 0], np.round(np.linspace(0, 255, 32)), atol=1)
  # A portrait photo stored landscape with EXIF orientation 6 (rotate 90 degrees clockwise to display).
  stored = np.zeros((20, 40, 3), np.uint8)
  stored[:, :20] = 255  # the stored image's left half is white
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(stored).save(tmp_path / "rot.jpg", exif=exif, quality=95)
  with Image.open(tmp_path / "rot.jpg") as img:
    shown = sources.to_rgb_square(img, 20)
  assert shown[:5].mean() > 200 and shown[-5:].mean() < 50  # displayed: white on top
  for i in range(8):
    Image.fromarray(ramp).save(tmp_path / f"more{i}.png")
  src = sources.FolderSource(str(tmp_path), 16)
  assert len(src) == 10 and "scaled to 8 bits" in caplog.text


def test_broken_config_files_are_one_line_errors(tmp_path):
  from genenv_jax.config_utils import check_override_flags, load_config

  bad = tmp_path / "bad.py"
  bad.write_text("def get_config(arg=None:\n  pass\n")
  with pytest.raises(ValueError, match=r"bad.py': syntax error at line 1"):
    load_config(str(bad))
  empty = tmp_path / "empty.py"
  empty.write_text("X = 1\n")
  assert "defines no get_config" in check_override_flags([f"--config={empty}"])


def test_a_folder_too_small_to_evaluate_names_the_folder(tmp_path, smoke_config):
  from genenv_jax import training

  Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "only.png")
  cfg = smoke_config("data.source='folder'", f"data.path={str(tmp_path)!r}", "data.channels=('rgb',)")
  with pytest.raises(ValueError, match=r"data.path=.*: 1 usable images; training and evaluation need at least 8"):
    training.Setup(cfg)
