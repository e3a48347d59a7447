"""The level worlds (dungeon, caves): every real level passes every rule; broken levels fail the right one."""

import os

import helpers
import numpy as np
import pytest

from genenv_jax.scenes import get_world, levels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("world", ["dungeon", "caves"])
@pytest.mark.parametrize("size,n", [(32, 150), (64, 40), (128, 8)])
def test_every_real_level_passes_every_rule(world, size, n):
  w = get_world(world)
  classes = set()
  for seed in range(n):
    sc = w.generate(seed, size)
    v = w.validity(sc.labels, sc.height)
    assert all(v.values()), (size, seed, v)
    assert sc.rgb.shape == (size, size, 3) and sc.labels.dtype == np.uint8
    classes.add(sc.scene_class)
    np.testing.assert_array_equal(sc.height, levels.HEIGHTS[sc.labels])
    if seed < 20:  # the finishing pass leaves a playable level as it is
      done, height = w.finish(sc.labels, sc.height, seed=seed)
      np.testing.assert_array_equal(done, sc.labels)
      np.testing.assert_array_equal(height, sc.height)
  assert classes == {0, 1, 2}


@pytest.mark.parametrize("world", ["dungeon", "caves"])
def test_levels_are_deterministic_varied_and_have_their_classes(world):
  w = get_world(world)
  a, b = w.generate(5, 64), w.generate(5, 64)
  np.testing.assert_array_equal(a.rgb, b.rgb)
  assert not np.array_equal(a.labels, w.generate(6, 64).labels)
  assert len(w.stat_names) == len(w.statistics(a.labels, a.height))
  every = np.concatenate([w.generate(s, 32).labels.ravel() for s in range(40)])
  want = {levels.ROCK, levels.FLOOR, levels.WATER, levels.ENTRANCE, levels.EXIT}
  if world == "dungeon":
    want |= {levels.CORRIDOR, levels.DOOR}
  assert set(np.unique(every)) == want
  # Statistics are stable: two halves of the seeds agree far better than dungeon vs caves.
  s1 = np.mean([w.statistics(w.generate(s, 32).labels) for s in range(0, 60)], 0)
  s2 = np.mean([w.statistics(w.generate(s, 32).labels) for s in range(60, 120)], 0)
  other = get_world("caves" if world == "dungeon" else "dungeon")
  s3 = np.mean([levels.statistics(other.generate(s, 32).labels) for s in range(0, 60)], 0)  # all ten
  s3 = s3[[levels.STAT_NAMES.index(n) for n in w.stat_names]]  # caves leave out corridors and doors
  assert np.abs(s1 - s2).sum() < 0.3 * np.abs(s1 - s3).sum()


def _walled_off_room(lab, y=20, x=20):
  """A 10x10 room of floor inside a 2-px ring of rock: more floor than the rules' tolerance, reachable from nowhere."""
  out = lab.copy()
  out[y : y + 14, x : x + 14] = levels.ROCK
  out[y + 2 : y + 12, x + 2 : x + 12] = levels.FLOOR
  return out


def _dungeon(seed=3, size=64):
  return get_world("dungeon").generate(seed, size).labels.copy()


def test_broken_dungeons_fail_the_right_rule():
  w = get_world("dungeon")
  lab = _dungeon()
  assert all(w.validity(lab).values())
  # An unreachable room: a room of floor walled off in rock.
  cut = _walled_off_room(lab)
  v = w.validity(cut)
  assert not v["walkable_connected"] and v["corridor_width"] and v["no_door_into_rock"]
  # No exit.
  no_exit = lab.copy()
  no_exit[no_exit == levels.EXIT] = levels.FLOOR
  assert not w.validity(no_exit)["entrance_to_exit"]
  # The exit walled off from the entrance: every door becomes rock.
  walled = lab.copy()
  walled[(walled == levels.DOOR)] = levels.ROCK
  assert not w.validity(walled)["entrance_to_exit"]
  # A 1-px corridor: every other column (and row) of the corridors turned to rock.
  thin = lab.copy()
  yy, xx = np.mgrid[0 : thin.shape[0], 0 : thin.shape[1]]
  thin[(thin == levels.CORRIDOR) & (((yy % 2) == 0) | ((xx % 2) == 0))] = levels.ROCK
  assert not w.validity(thin)["corridor_width"]
  # A door into rock: a doorway on a room's outer wall, touching floor and nothing beyond.
  door = lab.copy()
  room = door == levels.FLOOR
  from scipy import ndimage

  passages = ndimage.binary_dilation(np.isin(door, (levels.DOOR, levels.CORRIDOR)), iterations=3)
  rock_below = np.roll(door == levels.ROCK, -1, 0) & np.roll(door == levels.ROCK, -2, 0)
  edge = np.argwhere(room & rock_below & ~np.roll(passages, -1, 0))
  for y, x in edge[:8]:  # doorways that lead out of their room into solid rock
    door[y + 1, x] = levels.DOOR
  v = w.validity(door)
  assert not v["no_door_into_rock"] and v["walkable_connected"]


def test_broken_caves_fail_the_right_rule():
  w = get_world("caves")
  lab = w.generate(4, 64).labels.copy()
  assert all(w.validity(lab).values())
  # A disconnected cave: a pocket of floor in solid rock.
  assert not w.validity(_walled_off_room(lab))["walkable_connected"]
  # Salt-and-pepper rock: not a cave's smooth walls.
  specks = lab.copy()
  floor = np.argwhere(specks == levels.FLOOR)
  for y, x in floor[::7]:
    specks[y, x] = levels.ROCK
  assert not w.validity(specks)["cave_shape"]
  # All rock: no level at all.
  assert not w.validity(np.zeros_like(lab))["walkable_connected"]


def _far_from(changed, broken, px):
  """Changed pixels farther than ``px`` (Chebyshev) from every broken one."""
  from scipy import ndimage

  near = ndimage.binary_dilation(broken, np.ones((3, 3), bool), iterations=px)
  return int((changed & ~near).sum())


def test_the_finishing_pass_mends_each_broken_dungeon_near_its_break():
  w = get_world("dungeon")
  lab = _dungeon()
  yy, xx = np.mgrid[0 : lab.shape[0], 0 : lab.shape[1]]
  cases = {
    "walled-off room": _walled_off_room(lab),
    "thin corridors": np.where((lab == levels.CORRIDOR) & (((yy % 2) == 0) | ((xx % 2) == 0)), levels.ROCK, lab),
    "no exit": np.where(lab == levels.EXIT, levels.FLOOR, lab),
    "doors walled": np.where(lab == levels.DOOR, levels.ROCK, lab),
  }
  for name, broken in cases.items():
    broken = broken.astype(np.uint8)
    assert not all(w.validity(broken).values()), name
    done, height = w.finish(broken, None, seed=1)
    assert all(w.validity(done).values()), (name, w.validity(done))
    np.testing.assert_array_equal(height, levels.HEIGHTS[done])
    np.testing.assert_array_equal(done, w.finish(broken, None, seed=1)[0])  # a pure function
    changed = done != broken
    assert changed.mean() < 0.08, (name, changed.mean())
    if name != "no exit":  # the exit goes to the farthest spot; every other mend stays by its break
      assert _far_from(changed, broken != lab, 12) == 0, name
  # Noise is not a level: the pass makes it "connected", but by changing far more, and it has no rooms.
  noise = np.random.default_rng(0).integers(0, 7, lab.shape).astype(np.uint8)
  done, _ = w.finish(noise, None)
  assert w.validity(done)["walkable_connected"] and (done != noise).mean() > 0.08


def test_the_finishing_pass_joins_caves_with_tunnels_of_floor():
  w = get_world("caves")
  lab = w.generate(4, 64).labels.copy()
  cut = _walled_off_room(lab)
  cut[30, 10:14] = levels.CORRIDOR  # caves have no corridors or doors: they become floor
  done, _ = w.finish(cut, None)
  assert all(w.validity(done).values()), w.validity(done)
  assert not np.isin(done, (levels.CORRIDOR, levels.DOOR)).any()
  assert (done[cut == levels.FLOOR] != levels.ROCK).all()  # the walled-off pocket is joined, not filled
  assert get_world("dungeon_regions").finish is None


def _render_tiled():
  """tools/render_tiled.py as a module."""
  return helpers.load_script("tools/render_tiled.py")


@pytest.mark.parametrize("world", ["dungeon", "caves"])
def test_levels_export_as_tiled_maps_and_heightmaps(world, tmp_path):
  import json

  from genenv_jax import exports

  sc = exports.from_world(world, 33, 33, 2)
  out = str(tmp_path / "o")
  exports.export(sc, out, ["tiled", "unity", "gltf"], {"w": world})
  tmj_path = next(f"{out}/tiled/{f}" for f in os.listdir(f"{out}/tiled") if f.endswith(".tmj"))
  tmj = json.load(open(tmj_path))
  data = np.array(tmj["layers"][0]["data"]).reshape(33, 33) - 1
  np.testing.assert_array_equal(data, sc.labels)
  # tools/render_tiled.py draws the map from the files alone: each cell its class's colour.
  img, _ = _render_tiled().draw(tmj_path, 4)
  assert img.shape == (33 * 4, 33 * 4, 3)
  np.testing.assert_array_equal(img[2::4, 2::4], get_world(world).palette[sc.labels])  # cell centres
  side = json.load(open(f"{out}/unity/unity.json"))
  assert side["max_height_m"] == pytest.approx(3.0) and side["min_height_m"] == pytest.approx(0.0, abs=0.31)
  # sample.py --render=finished: a broken level is mended, its heights follow, its RGB is redrawn.
  import dataclasses

  broken = _walled_off_room(sc.labels, 8, 8)
  sc2 = dataclasses.replace(sc, labels=broken, height=levels.HEIGHTS[broken])
  w = get_world(world)
  assert not all(w.validity(broken).values())
  done = exports.render_with_world(sc2, seed=2, finished=True)
  assert all(w.validity(done.labels).values()) and "finished by the world's pass" in done.source
  np.testing.assert_array_equal(done.height, levels.HEIGHTS[done.labels])
  assert not np.array_equal(done.rgb, sc2.rgb)
  with pytest.raises(ValueError, match="render='finished': needs a world with a finishing pass"):
    exports.render_with_world(exports.from_world("city", 33, 33, 2), finished=True)
  with pytest.raises(ValueError, match="render='finished': draws square scenes"):  # before the pass runs
    exports.render_with_world(dataclasses.replace(sc2, labels=broken[:, :20], height=sc2.height[:, :20],
                                                  rgb=sc2.rgb[:, :20]), finished=True)  # fmt: skip


def test_eval_render_finished_scores_the_mended_levels_and_reports_the_share_changed():
  """evaluation._rendered('finished'): labels mended, heights from them, RGB drawn by the world, and
  finish_changed the measured share (what eval.py --render=finished writes)."""
  from types import SimpleNamespace

  from genenv_jax import evaluation

  w = get_world("dungeon")
  real = [w.generate(s, 32) for s in range(3)]
  labels = np.stack([real[0].labels, _walled_off_room(real[1].labels, 8, 8), real[2].labels])
  rgb = np.stack([r.rgb for r in real])
  fake = SimpleNamespace(
    world=w,
    layout=SimpleNamespace(
      decode=lambda x: {"rgb": rgb.copy(), "labels": labels.copy(), "height": levels.HEIGHTS[labels]}
    ),
  )
  out = evaluation._rendered(fake, None, "finished")
  assert [all(w.validity(lab).values()) for lab in out["labels"]] == [True, True, True]
  np.testing.assert_array_equal(out["labels"][[0, 2]], labels[[0, 2]])  # real levels untouched
  assert out["finish_changed"] == pytest.approx((out["labels"] != labels).mean()) and out["finish_changed"] > 0
  np.testing.assert_array_equal(out["height"], levels.HEIGHTS[out["labels"]])
  np.testing.assert_array_equal(out["rgb"][1], w.render(out["labels"][1], None, seed=1))


def test_an_endless_dungeon_region_with_a_sealed_room_fails_its_rule():
  w = get_world("dungeon_regions")
  sc = w.region(2, 100, -300, 64, 64)
  assert all(w.validity(sc.labels).values())
  v = w.validity(_walled_off_room(sc.labels))
  assert not v["no_enclosed_pocket"] and v["corridor_width"]
  # The whole endless level is one dungeon: in a large window, every walkable piece reaches the border and the
  # pieces join up outside a smaller window (here: the 256-px window holds one walkable component).
  from scipy import ndimage

  big = w.region(2, 0, 0, 256, 256).labels
  inner = big[16:-16, 16:-16]
  _, k = ndimage.label(levels.walkable(big), levels.FOUR)
  assert k <= 3 and w.validity(inner)["no_enclosed_pocket"]
