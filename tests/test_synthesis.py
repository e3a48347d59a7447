"""sample.py: deterministic bytes, resumable shards, TFDS read-back, seamless large scenes."""

import json
import os

import helpers
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from genenv_jax import cpu_kernels, parallel, synthesis, tiling, trained
from genenv_jax.synthesis import provenance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(smoke_workdir):
  return smoke_workdir


@pytest.fixture(scope="module")
def model(workdir):
  return trained.load(workdir)


@pytest.mark.parametrize("kernels", [None, "xla"])  # None: a new output's default ('eigen' on a CPU)
def test_one_and_eight_devices_and_two_batch_sizes_give_identical_bytes(model, tmp_path, kernels):
  args = dict(seed=3, shard_size=16, progress=False, cpu_convolutions=kernels)
  a = synthesis.run(model, str(tmp_path / "a"), 40, batch_size=8, num_devices=1, **args)
  synthesis.run(model, str(tmp_path / "b"), 40, batch_size=64, num_devices=8, **args)
  synthesis.run(model, str(tmp_path / "c"), 40, batch_size=16, num_devices=1, **args)
  assert len(a["shards"]) == 3 and a["cpu_convolutions"] == (kernels or "eigen")
  assert helpers._checksums(tmp_path / "a") == helpers._checksums(tmp_path / "b") == helpers._checksums(tmp_path / "c")


def test_a_batch_is_no_larger_than_a_shard_needs(model, tmp_path, monkeypatch):
  """16 samples at the default batch of 256 computed 256; the batch now covers one shard in whole device calls."""
  make, sizes = synthesis.make_generate, []

  def recording(*args):
    generate = make(*args)
    return lambda params, idx, seed: (sizes.append(len(idx)), generate(params, idx, seed))[1]

  monkeypatch.setattr(synthesis, "make_generate", recording)
  synthesis.run(model, str(tmp_path / "ds"), 12, batch_size=256, shard_size=100, progress=False, num_devices=1)
  assert sizes and set(sizes) == {16}, sizes  # 12 samples: two calls of chunk 8, not 256 (contact sheet included)
  assert len(tfds.builder_from_directory(str(tmp_path / "ds")).as_data_source("train")) == 12
  assert synthesis.covering_batch(256, 16, 10_000, 8) == 16
  assert synthesis.covering_batch(256, 20, 10_000, 8) == 24  # whole calls of 8 (1 device x chunk 8)
  assert synthesis.covering_batch(256, 1000, 100, 64) == 128  # a shard of 100 on 8 devices x chunk 8
  assert synthesis.covering_batch(256, 10**6, 10_000, 64) == 256  # large runs keep the batch asked for


def test_reads_back_through_tfds_without_tensorflow(model, tmp_path):
  out = str(tmp_path / "ds")
  synthesis.run(model, out, 20, seed=1, batch_size=8, shard_size=8, progress=False, num_devices=1)
  ds = tfds.builder_from_directory(out).as_data_source("train")
  assert len(ds) == 20
  rows = [ds[i] for i in range(20)]
  assert sorted(int(r["index"]) for r in rows) == list(range(20))
  assert rows[0]["image"].shape == (16, 16, 3) and rows[0]["labels"].shape == (16, 16)
  assert rows[0]["height"].shape == (16, 16) and int(rows[0]["seed"]) == 1
  assert os.path.exists(os.path.join(out, "contact_sheet.png"))
  prov = json.load(open(os.path.join(out, synthesis.PROVENANCE_FILE)))
  assert prov["checkpoint_step"] == model.step and prov["family"] == "gan" and prov["temperature"] == 1.0
  # Sample i is sample i: the stored image equals a fresh generation of index i (with the recorded kernels).
  gen = synthesis.make_generate(model, parallel.local_mesh(1), 8, 1.0, -1, prov["cpu_convolutions"])
  fresh = np.asarray(gen(model.params, np.arange(8, 16, dtype=np.int32), 1)["image"])
  by_index = {int(r["index"]): r["image"] for r in rows}
  np.testing.assert_array_equal(fresh[3], by_index[11])


def test_one_shard_regenerated_alone_is_identical(model, tmp_path):
  out = str(tmp_path / "ds")
  synthesis.run(model, out, 24, seed=2, batch_size=8, shard_size=8, progress=False, num_devices=1)
  before = helpers._checksums(out)
  shard1 = synthesis.shard_path(out, 1, 3)
  os.remove(shard1)
  os.remove(synthesis.digest_path(shard1))
  os.remove(os.path.join(out, synthesis.PROVENANCE_FILE))
  synthesis.run(model, out, 24, seed=2, batch_size=8, shard_size=8, progress=False, num_devices=1)
  assert helpers._checksums(out) == before


def test_conflicting_settings_are_refused(model, tmp_path):
  out = str(tmp_path / "ds")
  synthesis.run(model, out, 8, seed=0, batch_size=8, shard_size=8, progress=False, num_devices=1)
  with pytest.raises(ValueError, match=r"other settings \(seed: existing 0 vs requested 5\)"):
    synthesis.run(model, out, 8, seed=5, batch_size=8, shard_size=8, progress=False, num_devices=1)
  with pytest.raises(ValueError, match="num_samples: existing 8 vs requested 16"):
    synthesis.run(model, out, 16, seed=0, batch_size=8, shard_size=8, progress=False, num_devices=1)


def test_bad_arguments(model, tmp_path, workdir):
  with pytest.raises(ValueError, match="batch_size=12: must be a multiple of 8 local devices"):
    synthesis.run(model, str(tmp_path / "x"), 8, batch_size=12, progress=False)
  with pytest.raises(ValueError, match="cond=2: allowed classes are none"):
    synthesis.run(model, str(tmp_path / "x"), 8, batch_size=64, cond=2, progress=False)
  with pytest.raises(FileNotFoundError, match="no run.json"):
    trained.load(str(tmp_path))
  os.chmod(tmp_path, 0o500)
  try:
    if os.geteuid() != 0:  # root can write anywhere
      with pytest.raises(OSError, match="cannot write there"):
        synthesis.run(model, str(tmp_path / "ro" / "x"), 8, batch_size=64, progress=False)
  finally:
    os.chmod(tmp_path, 0o700)
  with pytest.raises(ValueError, match="scene_size='big'"):
    tiling.parse_size("big")


def test_write_failure_leaves_no_complete_looking_shard(model, tmp_path, monkeypatch):
  out = str(tmp_path / "ds")

  class Full:
    def __init__(self, *a, **k):
      raise OSError(28, "No space left on device")

  from array_record.python import array_record_module as arm

  monkeypatch.setattr(arm, "ArrayRecordWriter", Full)
  with pytest.raises(OSError, match="writing shard 0 to .* failed: No space left on device"):
    synthesis.run(model, out, 8, batch_size=8, shard_size=8, progress=False, num_devices=1)
  assert not [f for f in os.listdir(out) if "array_record" in f or f.startswith(".tmp")]


def test_tiles_join_without_seams(model):
  tl = model.family.tiling
  t = 3
  one_piece = tiling.render_region(model, 7, 0, 0, 2 * t, 2 * t)
  render, n_dev = tiling.make_tile_renderer(model, t, 1.0, -1)
  origins = np.array([[r * t, c * t] for r in range(2) for c in range(2)] + [[0, 0]] * (n_dev - 4), np.int32)
  tiles = np.asarray(render(model.params, 7, origins))
  tp = t * tl.cell_px
  assembled = np.concatenate([np.concatenate([tiles[0], tiles[1]], 1), np.concatenate([tiles[2], tiles[3]], 1)], 0)
  assert assembled.shape == one_piece.shape == (2 * tp, 2 * tp, 9)
  np.testing.assert_allclose(assembled, one_piece, atol=1e-4)
  # A region away from the origin is the same cells of the same field.
  shifted = tiling.render_region(model, 7, t, t, t, t)
  np.testing.assert_allclose(shifted, one_piece[tp:, tp:], atol=1e-4)


def test_large_scene_png(model, tmp_path):
  tiling.write_large_scene(model, str(tmp_path), 100, 150, seed=1, tile_cells=4)
  for name, mode in (("scene_rgb.png", "RGB"), ("scene_labels.png", "RGB"), ("scene_height.png", "I;16")):
    with Image.open(tmp_path / name) as img:
      assert img.size == (150, 100) and img.mode == mode
  # The streamed PNG holds the rendered field: compare a region rendered in one piece.
  px = model.family.tiling.cell_px
  region = tiling.render_region(model, 1, 0, 0, 40 // px, 40 // px)
  want = np.clip(np.round((region[..., :3] + 1) * 127.5), 0, 255)
  got = np.asarray(Image.open(tmp_path / "scene_rgb.png"))[:40, :40].astype(np.float64)
  assert np.abs(got - want).max() <= 1  # float noise may flip a rounding


@pytest.mark.slow
def test_sigkill_then_resume_is_byte_identical(workdir, tmp_path):
  helpers.check_sigkill_resume(workdir, tmp_path)


def test_settings_that_change_bytes_are_recorded_and_checked(model, tmp_path):
  out = str(tmp_path / "ds")
  synthesis.run(model, out, 8, batch_size=8, shard_size=8, chunk=8, progress=False, num_devices=1)
  with pytest.raises(ValueError, match="chunk: existing 8 vs requested 4"):
    synthesis.run(model, out, 8, batch_size=8, shard_size=8, chunk=4, progress=False, num_devices=1)
  assert json.load(open(os.path.join(out, synthesis.PROVENANCE_FILE)))["chunk"] == 8
  for t in (float("nan"), float("inf"), -1.0):
    with pytest.raises(ValueError, match="temperature=.*must be a finite number >= 0"):
      synthesis.run(model, str(tmp_path / "t"), 8, batch_size=8, temperature=t, progress=False, num_devices=1)
  with pytest.raises(ValueError, match="chunk=0: must be a positive integer"):
    synthesis.run(model, str(tmp_path / "c"), 8, batch_size=8, chunk=0, progress=False, num_devices=1)


def test_convolution_kernels_are_chosen_recorded_and_kept_on_resume(model, tmp_path):
  """A new CPU output gets Eigen's convolutions; an output keeps the kernels it started with (older ones: 'xla')."""
  args = dict(batch_size=8, shard_size=8, progress=False, num_devices=1)
  new = synthesis.run(model, str(tmp_path / "new"), 8, **args)
  assert new["cpu_convolutions"] == "eigen"
  # The compiled generator obeys the choice: no convolution left in YNNPACK with 'eigen'.
  mesh, idx = parallel.local_mesh(1), np.arange(8, dtype=np.int32)
  gens = {k: synthesis.make_generate(model, mesh, 8, 1.0, -1, k) for k in cpu_kernels.CHOICES}
  counts = {k: helpers.convolutions_in_and_out_of_ynnpack(g.lower(model.params, idx, 0).compile().as_text())
            for k, g in gens.items()}  # fmt: skip
  assert counts["xla"][0] > 0 and counts["eigen"][0] == 0 and counts["eigen"][1] > 0, counts
  # The two differ by float rounding only: at most one 8-bit level, in few pixels.
  imgs = [np.asarray(g(model.params, idx, 0)["image"], np.int16) for g in gens.values()]
  assert np.abs(imgs[0] - imgs[1]).max() <= 1 and np.mean(imgs[0] != imgs[1]) < 0.01

  # An output written before the choice was recorded: 'xla' bytes, no key in its settings.
  old = str(tmp_path / "old")
  synthesis.run(model, old, 16, cpu_convolutions="xla", **args)
  before = helpers._checksums(old)
  settings_path = os.path.join(old, synthesis.SETTINGS_FILE)
  saved = json.load(open(settings_path))
  del saved["cpu_convolutions"]
  json.dump(saved, open(settings_path, "w"))
  os.remove(synthesis.shard_path(old, 1, 2))
  resumed = synthesis.run(model, old, 16, **args)  # the same command as then: resumes with 'xla'
  assert resumed["cpu_convolutions"] == "xla" and helpers._checksums(old) == before
  with pytest.raises(ValueError, match="cpu_convolutions: existing 'xla' vs requested 'eigen'"):
    synthesis.run(model, old, 16, cpu_convolutions="eigen", **args)
  with pytest.raises(ValueError, match=r"cpu_convolutions='fast': must be one of \['xla', 'eigen'\]"):
    synthesis.run(model, str(tmp_path / "bad"), 8, cpu_convolutions="fast", **args)


def test_clean_runs_write_identical_files(model, tmp_path):
  for name in ("a", "b"):
    synthesis.run(model, str(tmp_path / name), 16, seed=9, batch_size=8, shard_size=8, progress=False, num_devices=1)
  assert helpers._files(tmp_path / "a") == helpers._files(tmp_path / "b")
  for entry, q in zip(json.load(open(tmp_path / "a" / synthesis.PROVENANCE_FILE))["shards"], range(2)):
    assert entry["file_sha256"] == provenance.file_sha256(synthesis.shard_path(str(tmp_path / "a"), q, 2))


def test_damaged_or_deleted_shards_are_rewritten_and_provenance_follows(model, tmp_path):
  out = str(tmp_path / "ds")
  args = dict(seed=2, batch_size=8, shard_size=8, progress=False, num_devices=1)
  first = synthesis.run(model, out, 24, **args)
  shard0, shard2 = synthesis.shard_path(out, 0, 3), synthesis.shard_path(out, 2, 3)
  with open(shard0, "r+b") as f:
    f.truncate(os.path.getsize(shard0) // 2)
  os.remove(shard2)
  open(os.path.join(out, ".tmp-shard-garbage"), "w").close()  # a stray file that names no shard
  again = synthesis.run(model, out, 24, **args)
  assert again["shards"] == first["shards"]
  assert [provenance.file_sha256(synthesis.shard_path(out, j, 3)) for j in range(3)] == helpers._files(out)
  assert not [f for f in os.listdir(out) if f.startswith(".tmp-shard")]
  ds = tfds.builder_from_directory(out).as_data_source("train")
  assert sorted(int(ds[i]["index"]) for i in range(len(ds))) == list(range(24))


def test_large_scene_limit_and_stale_temporary_files(model, tmp_path, monkeypatch):
  monkeypatch.setattr(tiling, "MAX_PIXELS", 64 * 64)
  with pytest.raises(ValueError, match=r"scene_size=100x100: .* pass --force"):
    tiling.write_large_scene(model, str(tmp_path), 100, 100, tile_cells=4)
  stale = tmp_path / "scene_rgb.png.tmp12345"
  stale.write_bytes(b"half")
  tiling.write_large_scene(model, str(tmp_path), 100, 100, tile_cells=4, force=True, progress=False)
  assert not stale.exists() and (tmp_path / "scene_rgb.png").exists()
