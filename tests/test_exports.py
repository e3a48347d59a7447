"""Engine exports read back by independent readers: values, orientation, sizes, meshes, maps, atlases."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genenv_jax import exports
from genenv_jax.exports import heightmaps, meshes, tiled

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PALETTE = np.array([[10, 10, 10], [200, 0, 0], [0, 200, 0], [0, 0, 200], [250, 250, 0]], np.uint8)
CLASSES = ("ground", "road", "building", "park", "water")


def _scene(n=65, world="terrain", mpp=2.0, hr=100.0, seed=0):
  """An asymmetric scene: high in the north-west (top-left) corner, a smooth random field elsewhere."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:n, 0:n] / (n - 1)
  height = (0.6 * (1 - yy) * (1 - xx) + 0.002 * rng.random((n, n))).astype(np.float32)
  labels = rng.integers(0, len(CLASSES), (n, n)).astype(np.uint8)
  return exports.ExportScene(
    rgb=PALETTE[labels],
    labels=labels,
    height=height,
    world=world,
    class_names=CLASSES,
    palette=PALETTE,
    metres_per_pixel=mpp,
    height_range_m=hr,
    source="test",
  )


def _export(scene, tmp_path, names):
  out = str(tmp_path / "out")
  exports.export(scene, out, names, {"test": 1})
  return out


def test_unity_raw_and_unreal_png_round_trip_with_orientation(tmp_path):
  sc = _scene(65)
  out = _export(sc, tmp_path, ["unity", "godot"])
  side = json.load(open(os.path.join(out, "unity", "unity.json")))
  lo, hi = side["min_height_m"], side["max_height_m"]
  metres = sc.height.astype(np.float64) * 100.0
  assert lo == pytest.approx(metres.min()) and hi == pytest.approx(metres.max())
  step = (hi - lo) / 65535
  raw = np.fromfile(os.path.join(out, "unity", "terrain.raw"), "<u2")
  assert raw.nbytes == 65 * 65 * 2
  assert side["origin"].startswith("bottom-left") and side["import_dialog"]["Byte Order"] == "Windows"
  unity = np.flipud(raw.reshape(65, 65)).astype(np.float64) * step + lo  # the sidecar's origin: bottom-left
  assert np.abs(unity - metres).max() <= step / 2 + 1e-9  # quantisation: within one step
  assert np.unravel_index(unity.argmax(), unity.shape) == (0, 0)  # the high corner stays north-west
  assert side["import_dialog"]["Terrain Size"] == {"x": 128.0, "y": pytest.approx(hi - lo), "z": 128.0}
  # Unreal (its own sizes): Pillow reads the PNG as 16-bit with the written values; top-left is the origin.
  sc127 = _scene(127, seed=1)
  out127 = _export(sc127, tmp_path / "u", ["unreal"])
  with Image.open(os.path.join(out127, "unreal", "terrain.png")) as img:
    assert img.mode.startswith("I") and img.size == (127, 127)
    png = np.asarray(img).astype(np.float64)
  uside = json.load(open(os.path.join(out127, "unreal", "unreal.json")))
  assert uside["origin"].startswith("top-left")
  lo2, hi2 = uside["min_height_m"], uside["max_height_m"]
  assert np.abs(png * (hi2 - lo2) / 65535 + lo2 - sc127.height_m()).max() <= (hi2 - lo2) / 65535
  assert np.unravel_index(png.argmax(), png.shape) == (0, 0)
  assert uside["import_dialog"]["Scale"]["z"] == pytest.approx((hi2 - lo2) * 100 / 512)
  # Godot: r16 and EXR read back equal.
  import OpenEXR

  r16 = np.fromfile(os.path.join(out, "godot", "terrain.r16"), "<u2").reshape(65, 65)
  np.testing.assert_array_equal(r16, np.flipud(raw.reshape(65, 65)))
  with OpenEXR.File(os.path.join(out, "godot", "terrain.exr")) as f:
    exr = f.channels()["Y"].pixels
  np.testing.assert_allclose(exr, metres, rtol=1e-6)
  assert np.unravel_index(exr.argmax(), exr.shape) == (0, 0)


def test_large_heightmaps_are_edge_sharing_tiles_named_for_the_engine(tmp_path):
  sc = _scene(65)
  out = str(tmp_path)
  files = heightmaps.unity(sc, out, tile=33)
  assert sorted(files) == ["terrain_0_0.raw", "terrain_0_1.raw", "terrain_1_0.raw", "terrain_1_1.raw"]
  whole = np.zeros((65, 65))
  for x in range(2):
    for z in range(2):
      t = np.flipud(np.fromfile(os.path.join(out, f"terrain_{x}_{z}.raw"), "<u2").reshape(33, 33))
      whole[65 - 33 - 32 * z : 65 - 32 * z, 32 * x : 32 * x + 33] = t  # z counts tiles from the south
  q = heightmaps.quantise(sc.height_m(), *heightmaps.height_range(sc))
  np.testing.assert_array_equal(whole, q)
  sc2 = _scene(253)
  assert sorted(heightmaps.unreal(sc2, out, tile=127)) == [f"terrain_x{x}_y{y}.png" for x in range(2) for y in range(2)]


def test_sizes_and_inputs_engines_cannot_take_are_refused_before_writing(tmp_path):
  out = str(tmp_path / "out")
  with pytest.raises(ValueError, match=r"unknown format\(s\) \['fbx'\]; allowed: \['gltf'"):
    exports.parse("unity,fbx")
  with pytest.raises(ValueError, match=r"scene size 100: unity takes \[33, 65"):
    exports.export(_scene(100), out, ["tiled", "unity"], {"a": 1})
  assert not os.path.exists(out)
  forest = _scene(65, world="forest")
  with pytest.raises(ValueError, match=r"export='unity': needs a top-down world .*'forest' is a side view"):
    exports.export(forest, out, ["unity"], {"a": 1})
  no_heights = _scene(65)
  no_heights.height = None
  with pytest.raises(ValueError, match="export='gltf': needs heights"):
    exports.export(no_heights, out, ["gltf"], {"a": 1})
  exports.export(_scene(65), out, ["tiled"], {"a": 1})
  with pytest.raises(ValueError, match="holds an export made with other settings"):
    exports.export(_scene(65), out, ["tiled"], {"a": 2})

  def broken(scene, folder):
    open(os.path.join(folder, "half.raw"), "w").close()
    raise OSError(28, "No space left on device")

  exports.EXPORTERS["splat"] = exports.EXPORTERS["splat"]._replace(write=broken)
  try:
    with pytest.raises(OSError):
      exports.export(_scene(65), out, ["splat"], {"a": 1})
  finally:
    exports.EXPORTERS["splat"] = exports.EXPORTERS["splat"]._replace(write=heightmaps.splat)
  assert sorted(os.listdir(out)) == ["export.json", "tiled"]  # nothing half-written


@pytest.mark.parametrize("n", [40, 300])
def test_tiled_map_parses_and_decodes_to_the_label_map(tmp_path, n):
  import pytiled_parser

  sc = _scene(n)
  out = _export(sc, tmp_path, ["tiled", "splat"])
  path = os.path.join(out, "tiled", "scene.tmj")
  parsed = pytiled_parser.parse_map(pathlib.Path(path))
  assert parsed.map_size.width == n and parsed.infinite == (n > tiled.CHUNKED_ABOVE)
  assert parsed.tilesets[1].tile_count == len(CLASSES)
  np.testing.assert_array_equal(tiled.decode(json.load(open(path))), sc.labels)
  if n < tiled.CHUNKED_ABOVE:
    np.testing.assert_array_equal(np.asarray(parsed.layers[0].data) - 1, sc.labels)
  # Splat maps: class c is channel c % 4 of splat_{c // 4}.png.
  for c in range(len(CLASSES)):
    with Image.open(os.path.join(out, "splat", f"splat_{c // 4}.png")) as img:
      np.testing.assert_array_equal(np.asarray(img)[..., c % 4] == 255, sc.labels == c)


def test_gltf_terrain_and_city_meshes_load_with_their_size_in_metres(tmp_path):
  import trimesh

  sc = _scene(65, mpp=2.0, hr=100.0)
  out = _export(sc, tmp_path, ["gltf"])
  mesh = trimesh.load(os.path.join(out, "gltf", "terrain.glb"), force="mesh")
  metres = sc.height_m()
  np.testing.assert_allclose(mesh.bounds, [[0, metres.min(), 0], [128, metres.max(), 128]], atol=1e-4)
  v = mesh.vertices
  assert np.hypot(*v[v[:, 1].argmax()][[0, 2]]) < 30  # the high corner is at the origin (north-west)
  obj = trimesh.load(os.path.join(out, "gltf", "terrain.obj"), force="mesh")
  np.testing.assert_allclose(obj.bounds, mesh.bounds, atol=1e-4)
  city = exports.from_world("city", 64, 64, seed=3)
  out = str(tmp_path / "city")
  exports.export(city, out, ["gltf"], {"c": 1})
  loaded = trimesh.load(os.path.join(out, "gltf", "city.glb"))
  buildings = [g for name, g in loaded.geometry.items() if name.startswith("building")]
  assert buildings and all(b.is_watertight and b.volume > 0 for b in buildings)
  assert len(buildings) == json.load(open(os.path.join(out, "gltf", "city.json")))["buildings"]
  assert loaded.bounds[1][0] == pytest.approx(64 * city.metres_per_pixel)
  assert loaded.bounds[1][1] <= city.height_range_m


def test_extruded_masks_are_closed_even_with_pinches():
  rng = np.random.default_rng(1)
  for _ in range(10):
    m = rng.random((12, 12)) < 0.5
    mesh = meshes.extrude(m, 5.0, 1.0)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume >= m.sum() * 5.0 - 1e-6


def test_world_sources_from_the_command_line(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}

  def sample(*args):
    cmd = [sys.executable, os.path.join(ROOT, "sample.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)

  r = sample("--world=characters", f"--output={tmp_path / 's'}", "--num_samples=6", "--export=sprites")
  assert r.returncode == 0, r.stderr[-2000:]
  atlas = json.load(open(tmp_path / "s" / "sprites" / "sprites.json"))
  with Image.open(tmp_path / "s" / "sprites" / "sprites.png") as img:
    sheet = np.asarray(img)
  assert len(atlas["frames"]) == 6 and atlas["meta"]["size"] == {"w": sheet.shape[1], "h": sheet.shape[0]}
  covered = np.zeros(sheet.shape[:2], bool)
  for f in atlas["frames"].values():
    fr = f["frame"]
    covered[fr["y"] : fr["y"] + fr["h"], fr["x"] : fr["x"] + fr["w"]] = True
  assert covered[sheet[..., 3] > 0].all()  # every opaque pixel belongs to a frame
  r = sample("--world=forest", f"--output={tmp_path / 'f'}", "--scene_size=48x48", "--export=layers")
  assert r.returncode == 0, r.stderr[-2000:]
  layer_files = json.load(open(tmp_path / "f" / "layers" / "layers.json"))["back_to_front"]
  alphas = [np.asarray(Image.open(tmp_path / "f" / "layers" / p))[..., 3] > 0 for p in layer_files]
  assert np.sum(alphas, axis=0).max() == 1 and np.sum(alphas, axis=0).min() == 1  # layers partition the scene
  bad = sample("--world=forest", f"--output={tmp_path / 'g'}", "--scene_size=33x33", "--export=unity")
  assert bad.returncode == 1 and "'forest' is a side view" in bad.stderr and "Traceback" not in bad.stderr
  assert not os.path.exists(tmp_path / "g" / "unity")
  kernels = sample("--world=forest", f"--output={tmp_path / 'k'}", "--scene_size=48x48", "--export=layers",
                   "--cpu_convolutions=eigen")  # fmt: skip
  assert kernels.returncode == 1 and "--cpu_convolutions='eigen' applies to datasets only" in kernels.stderr


def test_a_model_scene_exports_streamed_from_its_tiles(smoke_workdir, tmp_path):
  from genenv_jax import tiling, trained

  model = trained.load(smoke_workdir)
  with pytest.raises(ValueError, match="export='layers': needs a side-view world.*'city' is a top-down"):
    exports.check_model(model, ["layers"], (33, 33))
  with pytest.raises(ValueError, match="scene size 40: unity takes"):
    exports.check_model(model, ["unity"], (40, 40))
  scene = exports.from_model(model, 33, 33, 4, str(tmp_path), tile_cells=4)
  assert isinstance(scene.height, np.memmap)  # spooled to disk, read back in windows
  px = model.family.tiling.cell_px
  want = tiling.render_region(model, 4, 0, 0, 32 // px, 32 // px)
  np.testing.assert_allclose(scene.height[:32, :32], (want[..., -1] + 1) / 2, atol=1e-4)
  out = str(tmp_path / "out")
  exports.export(scene, out, ["unity", "tiled"], {"t": 1})
  raw = np.fromfile(os.path.join(out, "unity", "terrain.raw"), "<u2").reshape(33, 33)
  lo, hi = heightmaps.height_range(scene)
  np.testing.assert_array_equal(np.flipud(raw), heightmaps.quantise(scene.height_m(), lo, hi))
  world = exports.render_with_world(scene, seed=4)
  assert world.rgb.shape == (33, 33, 3) and not np.array_equal(world.rgb, scene.rgb)


def _heightmaps_in_metres(out, n_unity=None, n_unreal=None):
  """Every heightmap format written in ``out`` as metres, rows from the north edge (each sidecar's origin applied)."""
  import OpenEXR

  got = {}
  for fmt in ("unity", "unreal", "godot"):
    folder = os.path.join(out, fmt)
    if not os.path.isdir(folder):
      continue
    side = json.load(open(os.path.join(folder, f"{fmt}.json")))
    lo, step = side["min_height_m"], side["height_step_m"]
    if fmt == "unity":
      assert side["origin"].startswith("bottom-left")
      n = side["import_dialog"]["Width"]
      got["unity"] = np.flipud(np.fromfile(os.path.join(folder, "terrain.raw"), "<u2").reshape(n, n)) * step + lo
    elif fmt == "unreal":
      assert side["origin"].startswith("top-left")
      got["unreal"] = np.asarray(Image.open(os.path.join(folder, "terrain.png")), np.float64) * step + lo
    else:
      assert side["origin"].startswith("top-left")
      h, w = side["height"], side["width"]
      got["godot_r16"] = np.fromfile(os.path.join(folder, "terrain.r16"), "<u2").reshape(h, w) * step + lo
      with OpenEXR.File(os.path.join(folder, "terrain.exr")) as f:
        got["godot_exr"] = np.asarray(f.channels()["Y"].pixels, np.float64)
  return got


def _agree(got, step):
  ref = got.pop("unity" if "unity" in got else "godot_r16")
  for name, metres in got.items():
    assert metres.shape == ref.shape, name
    err = np.abs(metres - ref).max()
    assert err <= step + 1e-6, f"{name} differs from the reference by {err:.3f} m (one step {step:.4f} m)"


def test_every_heightmap_format_agrees_on_an_asymmetric_column_major_scene(tmp_path):
  """A scene whose heights are not symmetric under transposition, stored column-major (as a world's can be)."""
  for n, fmts in ((129, ["unity", "godot"]), (127, ["unreal", "godot"])):
    sc = _scene(n)
    yy, xx = np.mgrid[0:n, 0:n] / (n - 1)
    sc.height = np.asfortranarray((0.8 * yy**2 + 0.1 * xx).astype(np.float32))  # high in the south, not in the east
    out = str(tmp_path / f"o{n}")
    exports.export(sc, out, fmts, {"n": n})
    got = _heightmaps_in_metres(out)
    want = sc.height.astype(np.float64) * sc.height_range_m
    np.testing.assert_allclose(got["godot_exr"], want, rtol=1e-6, atol=1e-6)  # transposed before the fix
    _agree(got, 100.0 / 65535)


@pytest.mark.parametrize("world", ["terrain", "city", "terrain_regions", "city_regions"])
def test_every_heightmap_format_of_every_world_agrees_with_the_raw(world, tmp_path):
  # 257: the size at which the terrain world's heights come out column-major and its EXR was transposed
  # (870 m off its RAW before the fix).
  for n, fmts in ((257, ["unity", "godot"]), (253, ["unreal", "godot"])):
    sc = exports.from_world(world, n, n, 3)
    out = str(tmp_path / f"o{n}")
    exports.export(sc, out, fmts, {"n": n})
    got = _heightmaps_in_metres(out)
    np.testing.assert_allclose(got["godot_exr"], sc.height_m(), rtol=1e-6, atol=1e-3)
    _agree(got, json.load(open(os.path.join(out, "godot", "godot.json")))["height_step_m"])


@pytest.mark.parametrize("world", ["city_regions", "terrain_regions"])
def test_a_model_trained_on_regions_exports_to_every_engine(smoke_workdir, world, tmp_path):
  """The README's best large-scene models are trained on region worlds; their exports were refused by name."""
  import dataclasses

  from genenv_jax import trained
  from genenv_jax.scenes import get_world

  model = dataclasses.replace(trained.load(smoke_workdir), world=get_world(world))
  names = ["unity", "tiled", "gltf"]
  exports.check_model(model, names, (33, 33))
  scene = exports.from_model(model, 33, 33, 1, str(tmp_path), tile_cells=4)
  assert scene.world == world and scene.metres_per_pixel == get_world(world).ground.metres_per_pixel
  out = str(tmp_path / "out")
  written = exports.export(scene, out, names, {"w": world})
  assert set(written) == set(names) and "terrain.raw" in written["unity"]
  assert any(f.endswith(".glb") for f in written["gltf"])


@pytest.mark.parametrize("world", ["city_regions", "terrain_regions"])
def test_sample_py_exports_region_worlds(world, tmp_path):
  out = tmp_path / world
  r = subprocess.run(
    [sys.executable, "sample.py", f"--world={world}", f"--output={out}", "--scene_size=33x33",
     "--export=unity,tiled,gltf"],
    cwd=ROOT, capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert r.returncode == 0, r.stderr
  assert {p.name for p in out.iterdir()} >= {"unity", "tiled", "gltf", "export.json"}
  # The RAW holds the world's own heights (seed 0), in the sidecar's metres, bottom row first.
  scene = exports.from_world(world, 33, 33, 0)
  side = json.load(open(out / "unity" / "unity.json"))
  raw = np.fromfile(out / "unity" / "terrain.raw", "<u2").reshape(33, 33)
  got = np.flipud(raw) * side["height_step_m"] + side["min_height_m"]
  assert np.abs(got - scene.height_m()).max() <= side["height_step_m"]
  assert side["metres_per_pixel"] == scene.metres_per_pixel


def test_every_terrain_tile_has_an_obj_with_its_own_texture(tmp_path):
  import trimesh

  sc = _scene(2 * meshes.TILE + 1)
  out = _export(sc, tmp_path, ["gltf"])
  folder = os.path.join(out, "gltf")
  glbs = sorted(f for f in os.listdir(folder) if f.endswith(".glb"))
  assert len(glbs) == 4
  for g in glbs:
    stem = g[:-4]
    glb = trimesh.load(os.path.join(folder, g), force="mesh")
    obj = trimesh.load(os.path.join(folder, f"{stem}.obj"), force="mesh")
    np.testing.assert_allclose(obj.bounds, glb.bounds, atol=1e-4)
    mtl = open(os.path.join(folder, f"{stem}.mtl")).read()
    assert f"map_Kd {stem}_material_0.png" in mtl and os.path.exists(os.path.join(folder, f"{stem}_material_0.png"))
