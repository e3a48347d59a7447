"""The world server's API: pure regions, tiles, edits that stay local and survive restarts, bad requests, load."""

import base64
import io
import json
import os
import threading
import time
import zipfile

import jax
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from starlette.testclient import TestClient

from genenv_jax import families, parallel, trained
from genenv_jax import layout as layout_lib
from genenv_jax import workdir as workdir_lib
from genenv_jax.config_utils import load_config
from genenv_jax.families import base
from genenv_jax.scenes import get_world
from genenv_jax.server import app as server_app
from genenv_jax.server import sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png_b64(a: np.ndarray) -> str:
  buf = io.BytesIO()
  Image.fromarray(a).save(buf, format="PNG")
  return base64.b64encode(buf.getvalue()).decode()


def disc(h, w, cy, cx, r) -> np.ndarray:
  yy, xx = np.mgrid[:h, :w]
  return (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.uint8) * 255


def get_img(client, query: str) -> np.ndarray:
  r = client.get("/api/region?" + query)
  assert r.status_code == 200, r.text
  return np.asarray(Image.open(io.BytesIO(r.content)))


def untrained(config: str, world: str, image_size: int, tmp, jitter: float = 0.0) -> trained.Trained:
  """A model with initialised parameters (the server's mechanics do not need a trained one).

  ``jitter``: every parameter drawn as ``jitter * normal`` instead of the family's init (no init to
  compile; and flow matching's output layer starts at zero, so its initialised field is 0 and the ODE
  would return its noise unchanged).
  """
  cfg = load_config(os.path.join(ROOT, config))
  w = get_world(world)
  cfg.data.world = world
  lay = layout_lib.Layout(tuple(cfg.data.channels), tuple(w.class_names), w.palette)
  spec = base.DataSpec(image_size, lay.num_channels, 1, lay.one_hot)
  fam = families.make(cfg, spec)
  batch = {"x": np.zeros((2, image_size, image_size, spec.channels), np.float32), "label": np.zeros((2,), np.int32)}
  if jitter:
    # Shapes only (tracing, no compile), then random values: a non-zero field for the mechanics under test.
    shapes = jax.eval_shape(fam.init, jax.random.PRNGKey(0), batch).ema_params
    leaves, tree = jax.tree.flatten(shapes)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    params = jax.tree.unflatten(tree, [jitter * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)])
  else:
    params = jax.jit(fam.init)(jax.random.PRNGKey(0), batch).ema_params
  params = jax.device_put(params, parallel.replicated(parallel.local_mesh()))
  return trained.Trained(cfg, spec, fam, params, 0, w, workdir_lib.Workdir(str(tmp)), lay, None, ())


@pytest.fixture(scope="module")
def city(tmp_path_factory):
  src = sources.WorldSource("city_regions")
  folder = str(tmp_path_factory.mktemp("edits_city"))
  return src, folder


@pytest.fixture(scope="module")
def fm_model(tmp_path_factory):
  return untrained("configs/fm_city.py:smoke", "city_regions", 16, tmp_path_factory.mktemp("fm"), jitter=0.05)


# --------------------------------------------------------------------------- regions and tiles


@pytest.mark.parametrize("layer,fmt", [("rgb", "png"), ("labels", "png"), ("height", "raw16"), ("height", "npy")])
def test_world_region_is_pure_and_overlapping_regions_agree(city, tmp_path, layer, fmt):
  src, _ = city
  a = TestClient(server_app.make_app(src, str(tmp_path / "a")))
  b = TestClient(server_app.make_app(sources.WorldSource("city_regions"), str(tmp_path / "b")))
  q1 = f"seed=4&y0=-37&x0=90&h=200&w=150&layer={layer}&format={fmt}"
  r1, r2 = a.get("/api/region?" + q1), b.get("/api/region?" + q1)
  assert r1.status_code == 200 and r1.content == r2.content  # same request, same bytes (another process)

  def arr(r, h, w):
    if fmt == "raw16":
      assert float(r.headers["x-metres-per-step"]) == pytest.approx(src.height_range_m / 65535)
      return np.frombuffer(r.content, "<u2").reshape(h, w)
    if fmt == "npy":
      return np.load(io.BytesIO(r.content))
    return np.asarray(Image.open(io.BytesIO(r.content)))

  big = arr(r1, 200, 150)
  small = arr(a.get(f"/api/region?seed=4&y0=10&x0=120&h=64&w=48&layer={layer}&format={fmt}"), 64, 48)
  np.testing.assert_array_equal(big[47:111, 30:78], small)
  # ...and equal to the world's own region()
  sc = get_world("city_regions").region(4, 10, 120, 64, 48)
  want = {"rgb": sc.rgb, "labels": sc.labels, "height": sc.height}[layer]
  if fmt == "raw16":
    want = np.round(want.astype(np.float64) * 65535).astype(np.uint16)
  elif fmt == "npy":
    want = want.astype(np.float32) * np.float32(src.height_range_m)
  np.testing.assert_array_equal(small, want)


def test_tile_at_zoom_0_is_the_region_and_coarser_zooms_downsample(city, tmp_path):
  src, _ = city
  c = TestClient(server_app.make_app(src, str(tmp_path)))
  t = np.asarray(Image.open(io.BytesIO(c.get("/tiles/rgb/0/-1/2.png?seed=2").content)))
  np.testing.assert_array_equal(t, get_img(c, "seed=2&y0=512&x0=-256&h=256&w=256"))
  lab = Image.open(io.BytesIO(c.get("/tiles/labels/0/-1/2.png?seed=2").content))
  assert lab.mode == "P"  # class indices, with the world's palette
  np.testing.assert_array_equal(np.asarray(lab), get_img(c, "seed=2&y0=512&x0=-256&h=256&w=256&layer=labels"))
  z1 = np.asarray(Image.open(io.BytesIO(c.get("/tiles/rgb/1/0/0.png?seed=2").content)))
  full = get_img(c, "seed=2&y0=0&x0=0&h=512&w=512").astype(np.float32)
  want = full.reshape(256, 2, 256, 2, 3).mean((1, 3))
  assert z1.shape == (256, 256, 3) and np.abs(z1 - want).max() <= 1
  shaded = Image.open(io.BytesIO(c.get("/tiles/height/0/0/0.png?seed=2").content))
  assert shaded.size == (256, 256) and np.asarray(shaded).std() > 1


BAD = [
  ("/api/region?y0=abc&x0=0&h=8&w=8", "y0"),
  ("/api/region?y0=0&x0=1.5&h=8&w=8", "x0"),
  ("/api/region?y0=0&x0=0&w=8", "h"),
  ("/api/region?y0=0&x0=0&h=0&w=8", "h"),
  ("/api/region?y0=0&x0=0&h=4000&w=4000", "h"),
  ("/api/region?y0=99999999999&x0=0&h=8&w=8", "y0"),
  ("/api/region?y0=0&x0=0&h=8&w=8&layer=depth", "layer"),
  ("/api/region?y0=0&x0=0&h=8&w=8&format=jpeg", "format"),
  ("/api/region?y0=0&x0=0&h=8&w=8&format=raw16", "format"),
  ("/api/region?seed=-1&y0=0&x0=0&h=8&w=8", "seed"),
  ("/tiles/depth/0/0/0.png", "layer"),
  ("/tiles/rgb/9/0/0.png", "z"),
  ("/tiles/rgb/0/x/0.png", "x"),
  ("/api/export?y0=0&x0=0&h=8&w=8&format=obj", "format"),
  ("/api/sample?index=-3", "index"),
]


@pytest.mark.parametrize("url,param", BAD)
def test_bad_requests_are_400_naming_the_parameter(city, tmp_path, url, param):
  src, _ = city
  c = TestClient(server_app.make_app(src, str(tmp_path)))
  r = c.get(url)
  assert r.status_code == 400, (url, r.status_code, r.text)
  body = r.json()
  assert body["parameter"] == param and param in body["error"] and "\n" not in body["error"]


# --------------------------------------------------------------------------- edits


def test_world_edit_paints_a_lake_locally_survives_restart_and_undo_restores(city, tmp_path):
  src, _ = city
  folder = str(tmp_path / "edits")
  c = TestClient(server_app.make_app(src, folder))
  q = "seed=1&y0=0&x0=0&h=160&w=160"
  rgb0, lab0 = get_img(c, q), get_img(c, q + "&layer=labels")
  mask = disc(64, 64, 32, 32, 22)
  r = c.post("/api/edit", json={"seed": 1, "y0": 40, "x0": 48, "h": 64, "w": 64, "mask": png_b64(mask), "labels": 4})
  assert r.status_code == 200, r.text
  eid = r.json()["id"]
  rgb1, lab1 = get_img(c, q), get_img(c, q + "&layer=labels")
  inside = np.zeros((160, 160), bool)
  inside[40:104, 48:112] = mask > 0
  lake = lab1 == 4
  # The painted class everywhere it was painted, but for a one-pixel bank of ground where it meets a building
  # (the world's rule nothing_built_on_water kept by the edit).
  bank = inside & ~lake
  assert (lab1[bank] == 0).all() and bank.sum() < 0.1 * inside.sum()
  assert (ndimage.binary_dilation(lab1 == 2) & inside)[bank].all()
  assert not (ndimage.binary_dilation(lake & inside) & (lab1 == 2)).any()
  changed = (rgb1 != rgb0).any(-1) | (lab1 != lab0)
  assert changed[inside].mean() > 0.5 and not changed[~inside].any()  # nothing outside the mask
  assert get_img(c, "seed=2&y0=0&x0=0&h=160&w=160").shape == (160, 160, 3)  # other seeds untouched
  np.testing.assert_array_equal(get_img(c, "seed=2&y0=0&x0=0&h=160&w=160"), get_img(
    TestClient(server_app.make_app(src, str(tmp_path / "none"))), "seed=2&y0=0&x0=0&h=160&w=160"))  # fmt: skip
  # A restart (a new app on the same log) gives the same bytes; so does a lost patch file (recomputed).
  c2 = TestClient(server_app.make_app(sources.WorldSource("city_regions"), folder))
  np.testing.assert_array_equal(get_img(c2, q), rgb1)
  os.remove(os.path.join(folder, "patches", f"{eid}.npz"))
  c3 = TestClient(server_app.make_app(sources.WorldSource("city_regions"), folder))
  np.testing.assert_array_equal(get_img(c3, q), rgb1)
  # Undo restores the bytes, and is itself a line of the log.
  assert c3.delete(f"/api/edit/{eid}").json()["undone"] is True
  np.testing.assert_array_equal(get_img(c3, q), rgb0)
  assert c3.delete(f"/api/edit/{eid}").status_code == 404
  lines = [json.loads(x) for x in open(os.path.join(folder, "edits.jsonl"))]
  assert [x["op"] for x in lines] == ["edit", "undo"]


def test_a_world_edit_keeps_buildings_off_water():
  """A lake painted against a house gets a bank inside the mask; a house painted into water steps back."""
  w = get_world("city_regions")
  labels = np.zeros((12, 12), np.uint8)
  labels[:, 6:] = 2  # buildings on the right
  height = np.where(labels == 2, 0.5, 0.02).astype(np.float32)
  edit = np.zeros((12, 12), bool)
  edit[2:10, 2:6] = True  # a lake painted up to the buildings' wall
  labels[edit] = 4
  before = labels.copy()
  w.settle_edit(labels, height, edit)
  assert (labels[2:10, 5] == 0).all() and (labels[2:10, 2:5] == 4).all()  # a one-pixel bank of ground
  assert np.allclose(height[2:10, 5], 0.02)
  assert (labels[~edit] == before[~edit]).all()  # nothing outside the edit changes
  assert w.validity(labels, height)["nothing_built_on_water"]
  # The other way round: a house painted into a lake keeps a bank from the water around it.
  labels = np.full((12, 12), 4, np.uint8)
  edit = np.zeros((12, 12), bool)
  edit[3:9, 3:9] = True
  labels[edit] = 2
  height = np.where(labels == 2, 0.5, 0.0).astype(np.float32)
  w.settle_edit(labels, height, edit)
  assert (labels[4:8, 4:8] == 2).all() and (labels[3, 3:9] == 0).all()
  assert not (ndimage.binary_dilation(labels == 4) & (labels == 2)).any()


@pytest.mark.parametrize(
  "body,param",
  [
    ({"seed": 0, "y0": 0, "x0": 0, "h": 16, "w": 16, "mask": "not base64!"}, "mask"),
    ({"seed": 0, "y0": 0, "x0": 0, "h": 16, "w": 8, "mask": "SQUARE16"}, "mask"),
    ({"seed": 0, "y0": 0, "x0": 0, "h": 16, "w": 16, "mask": "EMPTY16"}, "mask"),
    ({"seed": 0, "y0": 0, "x0": 0, "h": 16, "w": 16, "mask": "SQUARE16", "labels": 9}, "labels"),
    ({"seed": 0, "y0": 0, "x0": 0, "h": 16, "w": 16, "mask": "SQUARE16", "labels": "xx"}, "labels"),
    ({"seed": 0, "y0": "a", "x0": 0, "h": 16, "w": 16, "mask": "SQUARE16"}, "y0"),
    ({"seed": 0, "y0": 0, "x0": 0, "h": 1024, "w": 1024, "mask": "SQUARE16"}, "h"),
    ([1, 2], "body"),
  ],
)
def test_bad_edits_are_400_and_store_nothing(city, tmp_path, body, param):
  src, _ = city
  folder = str(tmp_path / "edits")
  c = TestClient(server_app.make_app(src, folder))
  if isinstance(body, dict) and body["mask"] in ("SQUARE16", "EMPTY16"):
    body = dict(body, mask=png_b64(np.full((16, 16), 255 if body["mask"] == "SQUARE16" else 0, np.uint8)))
  r = c.post("/api/edit", json=body)
  assert r.status_code == 400 and r.json()["parameter"] == param, r.text
  assert not os.path.exists(os.path.join(folder, "edits.jsonl"))
  assert os.listdir(os.path.join(folder, "patches")) == []


def test_flow_matching_edit_inpaints_within_the_mask_and_follows_painted_classes(fm_model, tmp_path):
  src = sources.ModelSource(fm_model)
  assert src.info()["editable"] is True
  c = TestClient(server_app.make_app(src, str(tmp_path / "e")))
  q = "seed=0&y0=200&x0=200&h=96&w=96"  # across the chunk border at 256: cross-faded chunks
  rgb0, lab0 = get_img(c, q), get_img(c, q + "&layer=labels")
  mask = disc(48, 48, 24, 24, 16)
  r = c.post("/api/edit", json={"seed": 0, "y0": 224, "x0": 224, "h": 48, "w": 48, "mask": png_b64(mask), "labels": 4})
  assert r.status_code == 200, r.text
  rgb1, lab1 = get_img(c, q), get_img(c, q + "&layer=labels")
  inside = np.zeros((96, 96), bool)
  inside[24:72, 24:72] = mask > 0
  assert (lab1[inside] == 4).all()
  assert not ((rgb1 != rgb0).any(-1) | (lab1 != lab0))[~inside].any()
  assert (rgb1 != rgb0).any(-1)[inside].mean() > 0.02  # the model drew new colour under the painted class
  c2 = TestClient(server_app.make_app(sources.ModelSource(fm_model), str(tmp_path / "e")))
  np.testing.assert_array_equal(get_img(c2, q), rgb1)


def test_model_regions_agree_on_overlaps_across_chunks(fm_model, tmp_path):
  src = sources.ModelSource(fm_model)
  big = src.region(3, 230, -40, 80, 120)  # rows across 256, columns across 0
  small = src.region(3, 250, -10, 30, 40)
  for a, b in zip(big, small):
    np.testing.assert_array_equal(a[20:50, 30:70], b)
  # The cross-fade weights of the chunks sum to one (a partition of unity at every coordinate).
  p = np.arange(-600, 600)
  total = sum(sources._ramp(p, i, 16) for i in range(-4, 4))
  np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_model_canvas_kernels_eigen_by_default_on_a_cpu_and_equal_to_xla_up_to_rounding(fm_model):
  import jax

  src = sources.ModelSource(fm_model)
  assert src.kernels == ("eigen" if jax.default_backend() == "cpu" else "xla")
  xla = sources.ModelSource(fm_model, cpu_convolutions="xla")
  a, b = src.tensor(2, 10, 10, 40, 40), xla.tensor(2, 10, 10, 40, 40)
  assert np.abs(a - b).max() < 1e-3
  with pytest.raises(ValueError, match=r"cpu_convolutions='fast': must be one of \['xla', 'eigen', 'auto'\]"):
    sources.ModelSource(fm_model, cpu_convolutions="fast")


def test_gan_region_is_its_tiled_scene_and_it_is_not_editable(tmp_path):
  from genenv_jax import tiling

  model = untrained("configs/gan_city.py:smoke", "city_regions", 16, tmp_path / "g", jitter=0.05)
  src = sources.ModelSource(model)
  c = TestClient(server_app.make_app(src, str(tmp_path / "e")))
  assert c.get("/api/info").json()["editable"] is False
  got = get_img(c, "seed=5&y0=240&x0=0&h=32&w=32")
  px = model.family.tiling.cell_px
  want = model.layout.decode(tiling.render_region(model, 5, 240 // px, 0, 32 // px, 32 // px, src.temperature, 0)[None])
  # The server draws a whole chunk around the region; the float sums of a larger convolution may round the other
  # way, so one colour level on a rare pixel may differ (seen once: 1 value of 3072, under a loaded CPU).
  diff = np.abs(got.astype(int) - want["rgb"][0].astype(int))
  assert diff.max() <= 1 and (diff > 0).mean() < 0.01
  r = c.post("/api/edit", json={"seed": 0, "y0": 0, "x0": 0, "h": 16, "w": 16, "mask": png_b64(disc(16, 16, 8, 8, 4))})
  assert r.status_code == 409 and "editable" in r.json()["error"]


# --------------------------------------------------------------------------- samples, exports, load


def test_sample_of_a_sprite_world_and_export_of_a_view(tmp_path):
  c = TestClient(server_app.make_app(sources.WorldSource("characters"), str(tmp_path / "c")))
  info = c.get("/api/info").json()
  assert info["unbounded"] is False and info["editable"] is False
  a = c.get("/api/sample?seed=1&index=3").content
  assert a == c.get("/api/sample?seed=1&index=3").content != c.get("/api/sample?seed=1&index=4").content
  assert Image.open(io.BytesIO(a)).size == (32, 32)
  assert c.get("/api/region?y0=0&x0=0&h=8&w=8").status_code == 400
  city = TestClient(server_app.make_app(sources.WorldSource("city_regions"), str(tmp_path / "e")))
  r = city.get("/api/export?seed=0&y0=0&x0=0&h=257&w=257&format=unity")
  assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
  names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
  assert any(n.endswith(".raw") for n in names), names
  raw = [n for n in names if n.endswith(".raw")][0]
  h = np.frombuffer(zipfile.ZipFile(io.BytesIO(r.content)).read(raw), "<u2")
  assert h.size == 257 * 257
  t = city.get("/api/export?seed=0&y0=0&x0=0&h=64&w=64&format=tiled")
  assert any(n.endswith(".tmj") for n in zipfile.ZipFile(io.BytesIO(t.content)).namelist())


class _SlowSource(sources.WorldSource):
  """A world whose drawing waits for a gate (to fill the queue deterministically)."""

  def __init__(self):
    super().__init__("city_regions")
    self.gate, self.entered = threading.Event(), threading.Event()
    self.calls = []

  def region_batch(self, seed, windows):
    self.entered.set()
    self.gate.wait(30)
    self.calls.append(len(windows))
    return super().region_batch(seed, windows)


def test_concurrent_requests_share_draws_and_a_full_queue_answers_503(tmp_path):
  src = _SlowSource()
  app = server_app.make_app(src, str(tmp_path), max_queue=4)
  c = TestClient(app)
  results = []

  def ask(i):
    results.append(c.get(f"/api/region?seed=0&y0={16 * i}&x0=0&h=32&w=32").status_code)

  # One request first, alone, until the worker holds it at the gate; then seven more: the queue
  # takes four and three are refused at once (only refusals answer while the gate is shut). Sent
  # together, the worker could batch several before the gate and leave none refused (CI saw that).
  threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
  threads[0].start()
  assert src.entered.wait(30)
  for t in threads[1:]:
    t.start()
  deadline = time.monotonic() + 60
  while len(results) < 3 and time.monotonic() < deadline:
    time.sleep(0.05)
  src.gate.set()
  for t in threads:
    t.join(30)
  assert results.count(503) == 3 and results.count(200) == 5, results
  assert max(src.calls) >= 2  # waiting requests were drawn in one call


def test_serve_py_starts_answers_and_refuses_a_bad_source(tmp_path):
  import socket
  import subprocess
  import sys

  import httpx

  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  serve = os.path.join(ROOT, "serve.py")
  cmd = [sys.executable, serve, "--world=city_regions", f"--port={port}", f"--edits={tmp_path}"]
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    info = None
    for _ in range(300):
      try:
        info = httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=1).json()
        break
      except httpx.HTTPError:
        time.sleep(0.1)
    assert info is not None and info["world"] == "city_regions" and info["editable"] is True
    page = httpx.get(f"http://127.0.0.1:{port}/").text
    assert "<canvas" in page and "http" not in page.split("<script>")[1].split("fetch(")[0]  # no CDN
  finally:
    proc.terminate()
    proc.wait(20)
  bad = subprocess.run(
    [sys.executable, os.path.join(ROOT, "serve.py"), "--world=atlantis", f"--edits={tmp_path}"],
    capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert bad.returncode == 1 and "world='atlantis': unknown; allowed:" in bad.stderr
  bad = subprocess.run(
    [sys.executable, serve, "--world=city_regions", "--cpu_convolutions=fast", f"--edits={tmp_path}"],
    capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert bad.returncode == 1 and "cpu_convolutions='fast': must be one of" in bad.stderr
