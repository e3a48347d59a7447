"""The interiors world: every real plan passes every rule; broken plans fail the right one."""

import numpy as np
import pytest

from genenv_jax.scenes import get_world
from genenv_jax.scenes import interiors as I


@pytest.mark.parametrize("size,n", [(32, 150), (64, 40), (128, 6)])
def test_every_real_plan_passes_every_rule(size, n):
  w = get_world("interiors")
  classes = set()
  for seed in range(n):
    sc = w.generate(seed, size)
    v = w.validity(sc.labels, sc.height)
    assert all(v.values()), (size, seed, v)
    assert sc.rgb.shape == (size, size, 3) and sc.labels.dtype == np.uint8
    np.testing.assert_array_equal(sc.height, I.HEIGHTS[sc.labels])
    classes.add(sc.scene_class)
  assert classes == {0, 1, 2}


def test_plans_are_deterministic_varied_have_every_class_and_stable_statistics():
  w = get_world("interiors")
  a = w.generate(5, 32)
  np.testing.assert_array_equal(a.rgb, w.generate(5, 32).rgb)
  assert not np.array_equal(a.labels, w.generate(6, 32).labels)
  every = np.concatenate([w.generate(s, 32).labels.ravel() for s in range(80)])
  assert set(np.unique(every)) == set(range(len(I.CLASS_NAMES)))
  stats = np.array([w.statistics(w.generate(s, 32).labels) for s in range(160)])
  assert stats.shape[1] == len(w.stat_names)
  # Stable: the two halves of the seeds agree within 4 standard errors on every statistic ...
  se = stats.std(0) * np.sqrt(2 / 80) + 1e-6
  assert (np.abs(stats[:80].mean(0) - stats[80:].mean(0)) < 4 * se).all()
  # ... while the same plans without their furniture are far off on the furniture statistics.
  bare = []
  for s in range(80):
    lab = w.generate(s, 32).labels.copy()
    lab[np.isin(lab, I.FURNITURE)] = I.LIVING
    bare.append(w.statistics(lab))
  far = np.abs(stats[:80].mean(0) - np.mean(bare, 0)) / se
  assert far[w.stat_names.index("frac_furniture")] > 10 and far[w.stat_names.index("furniture_density")] > 10


def _plan(seed=3, size=64):
  return get_world("interiors").generate(seed, size).labels.copy()


def _failing(lab):
  return {k for k, ok in I.rules(lab).items() if not ok}


def test_a_gap_in_a_wall_fails_walls_closed_only():
  lab = _plan()
  ys, xs = np.nonzero(lab == I.EXT_WALL)
  # Open 3 px of exterior wall beside a room: the garden now leaks into it.
  for y, x in zip(ys, xs):
    if 0 < y < lab.shape[0] - 1 and lab[y - 1, x] == I.OUTSIDE and lab[y + 1, x] in I.FLOORS:
      if all(lab[y, x + d] == I.EXT_WALL and lab[y + 1, x + d] in I.FLOORS for d in range(3)):
        lab[y, x : x + 3] = lab[y + 1, x]
        break
  else:
    pytest.skip("no plain exterior wall run")
  assert _failing(lab) == {"walls_closed"}


def test_an_unreachable_room_fails_rooms_reachable():
  lab = _plan()
  rooms, k = I._rooms(lab)
  door = lab == I.DOOR
  # Close every interior door of the bedroom-most room: walled in, it can no longer be reached.
  for r in range(1, k + 1):
    mine = rooms == r
    if I._room_type(lab, mine) == I.BEDROOM:
      near = np.zeros_like(mine)
      near[1:] |= mine[:-1]
      near[:-1] |= mine[1:]
      near[:, 1:] |= mine[:, :-1]
      near[:, :-1] |= mine[:, 1:]
      lab[near & door] = I.INT_WALL
      break
  fails = _failing(lab)
  assert "rooms_reachable" in fails and "walls_closed" not in fails


def test_a_door_in_the_middle_of_a_room_fails_openings_in_walls():
  lab = _plan()
  rooms, k = I._rooms(lab)
  sizes = np.bincount(rooms.ravel())[1:]
  ys, xs = np.nonzero((rooms == sizes.argmax() + 1) & np.isin(lab, I.FLOORS))
  i = len(ys) // 2
  lab[ys[i], xs[i]] = I.DOOR
  lab[ys[i] + 1, xs[i]] = I.WINDOW
  assert "openings_in_walls" in _failing(lab)


def test_a_bedroom_without_its_bed_and_furniture_in_a_doorway_fail_their_rules():
  lab = _plan()
  no_bed = lab.copy()
  no_bed[no_bed == I.BED] = I.BEDROOM
  assert "room_has_furniture" in _failing(no_bed)
  blocked = lab.copy()
  ys, xs = np.nonzero(blocked == I.DOOR)
  for y, x in zip(ys, xs):
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
      yy, xx = y + dy, x + dx
      if 0 <= yy < lab.shape[0] and 0 <= xx < lab.shape[1] and blocked[yy, xx] in I.FLOORS:
        blocked[yy, xx] = I.TABLE
  assert "furniture_placed" in _failing(blocked)


def test_the_world_builds_as_tfds_and_reads_back(data_dir):
  from genenv_jax.data import world_builder

  ds = world_builder.prepare("interiors", 32, 12, 4, data_dir).as_data_source()
  row = ds["train"][3]
  sc = get_world("interiors").generate(int(row["index"]), 32)
  np.testing.assert_array_equal(row["labels"], sc.labels)
  np.testing.assert_array_equal(row["image"], sc.rgb)


def test_the_config_builds_its_layout_and_family():
  import os

  from conftest import ROOT

  from genenv_jax import config_utils, families
  from genenv_jax.config_utils import load_config

  for variant in ("smoke", "cpu"):
    cfg = load_config(os.path.join(ROOT, f"configs/fm_interiors.py:{variant}"))
    config_utils.validate(cfg)
    assert cfg.data.world == "interiors" and cfg.data.image_size >= 32
  spec = families.base.DataSpec(32, 3 + len(I.CLASS_NAMES) + 1, 1)
  assert families.make(cfg, spec).canvas is not None


def test_an_interior_exports_as_gltf_walls_with_openings_and_furniture_boxes(tmp_path):
  import json
  import os

  import trimesh

  from genenv_jax import exports

  sc = exports.from_world("interiors", 64, 64, seed=2)
  exports.export(sc, str(tmp_path), ["gltf", "tiled"], {"c": 1})
  loaded = trimesh.load(os.path.join(tmp_path, "gltf", "interior.glb"))
  info = json.load(open(os.path.join(tmp_path, "gltf", "interior.json")))
  geo = loaded.geometry
  walls = [g for k, g in geo.items() if k.startswith("wall_")]
  assert len(walls) == info["walls"] and all(w.is_watertight for w in walls)
  assert max(w.bounds[1][1] for w in walls) == pytest.approx(3.0)
  lab = np.asarray(sc.labels)
  # Openings: the walls hold exactly the wall pixels at 3 m (door and window pixels left open), the lintels
  # fill the openings from 2.1 m up and the sills the windows up to 1 m.
  cell = sc.metres_per_pixel**2
  wall_px = np.isin(lab, (I.EXT_WALL, I.INT_WALL)).sum()
  openings = np.isin(lab, (I.DOOR, I.WINDOW)).sum()
  assert sum(w.volume for w in walls) == pytest.approx(wall_px * cell * 3.0)
  lintels = [g for k, g in geo.items() if k.startswith("lintel_")]
  assert sum(g.volume for g in lintels) == pytest.approx(openings * cell * 0.9)
  assert all(g.bounds[0][1] == pytest.approx(2.1) for g in lintels)
  sills = [g for k, g in geo.items() if k.startswith("sill_")]
  assert sum(g.volume for g in sills) == pytest.approx((lab == I.WINDOW).sum() * cell * 1.0)
  furniture = {k.rsplit("_", 1)[0] for k in geo if k.split("_")[0] in I.CLASS_NAMES[I.BED :]}
  assert "bed" in furniture and info["furniture"] >= 3
  assert os.path.exists(os.path.join(tmp_path, "tiled", "scene.tmj"))


# --- the finishing pass (interiors_finish) ---------------------------------------


@pytest.mark.parametrize("size,n", [(32, 40), (64, 12), (128, 3)])
def test_the_finishing_pass_leaves_every_real_plan_unchanged(size, n):
  w = get_world("interiors")
  for seed in range(n):
    sc = w.generate(seed, size)
    lab, h = w.finish(sc.labels, sc.height, seed=seed)
    np.testing.assert_array_equal(lab, sc.labels, err_msg=f"size {size} seed {seed}")
    np.testing.assert_array_equal(h, sc.height)


def _mended(broken, seed=0, most=0.04):
  """The pass on a broken plan: every rule passes after it, it changed few pixels, it is deterministic."""
  w = get_world("interiors")
  out, h = w.finish(broken, None, seed=seed)
  assert not _failing(out), _failing(out)
  assert 0 < (out != broken).mean() < most
  np.testing.assert_array_equal(out, w.finish(broken, None, seed=seed)[0])
  np.testing.assert_array_equal(h, I.HEIGHTS[out])
  return out


def test_a_plan_without_doors_gets_a_front_door_and_a_door_into_every_room():
  lab = _plan()
  walled = lab.copy()
  door = walled == I.DOOR
  outside_near = np.zeros_like(door)
  outside_near[1:] |= (walled == I.OUTSIDE)[:-1]
  outside_near[:-1] |= (walled == I.OUTSIDE)[1:]
  outside_near[:, 1:] |= (walled == I.OUTSIDE)[:, :-1]
  outside_near[:, :-1] |= (walled == I.OUTSIDE)[:, 1:]
  walled[door] = np.where(outside_near[door], I.EXT_WALL, I.INT_WALL)
  assert "rooms_reachable" in _failing(walled)
  out = _mended(walled)
  # New doors only: nothing else but doors (and furniture cleared from their clearance) changed.
  changed = out != walled
  assert (out[changed] == I.DOOR).mean() > 0.6
  rooms, k = I._rooms(out)
  assert (out == I.DOOR).sum() >= 2 * k  # a 2-px door per room at least (the front door included)


def test_a_stray_door_and_blocked_doorways_are_mended_where_they_are():
  lab = _plan()
  broken = lab.copy()
  rooms, _ = I._rooms(broken)
  sizes = np.bincount(rooms.ravel())[1:]
  ys, xs = np.nonzero((rooms == sizes.argmax() + 1) & np.isin(broken, I.FLOORS))
  i = len(ys) // 2
  spots = [(ys[i], xs[i])]
  for y, x in zip(*np.nonzero(broken == I.DOOR)):  # a table in front of every door
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
      if broken[y + dy, x + dx] in I.FLOORS:
        broken[y + dy, x + dx] = I.TABLE
        spots.append((y + dy, x + dx))
  broken[ys[i], xs[i]] = I.DOOR  # an opening in the middle of a room
  assert {"openings_in_walls", "furniture_placed"} <= _failing(broken)
  out = _mended(broken, most=0.02)
  near = np.zeros_like(out, bool)
  for y, x in spots:
    near[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4] = True
  assert ((out != broken) & ~near).sum() == 0


def test_a_bedroom_without_its_bed_gets_one_and_mixed_floors_are_parted_by_a_wall():
  lab = _plan()
  no_bed = lab.copy()
  no_bed[no_bed == I.BED] = I.BEDROOM
  out = _mended(no_bed)
  assert (out == I.BED).sum() >= 12  # a 3x4 bed per bedroom that lost one
  mixed = lab.copy()
  rooms, k = I._rooms(mixed)
  sizes = np.bincount(rooms.ravel())[1:]
  big = rooms == sizes.argmax() + 1
  ys, xs = np.nonzero(big)
  half = big & (np.arange(mixed.shape[1])[None, :] >= np.median(xs)) & np.isin(mixed, I.FLOORS)
  kind = I._room_type(mixed, big)
  mixed[half] = I.KITCHEN if kind != I.KITCHEN else I.BEDROOM
  assert "room_has_furniture" in _failing(mixed) or "furniture_placed" in _failing(mixed)
  out = _mended(mixed, most=0.08)
  assert I._rooms(out)[1] > k  # the two halves are two rooms now, not one room repainted


def test_the_finishing_pass_does_not_make_noise_a_plan():
  w = get_world("interiors")
  rng = np.random.default_rng(0)
  for i in range(12):
    noise = rng.integers(0, len(I.CLASS_NAMES), (32, 32)).astype(np.uint8)
    out, _ = w.finish(noise, None, seed=i)
    assert _failing(out) and (out != noise).mean() > 0.2
