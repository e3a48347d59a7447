"""Worlds without edges: regions keyed to global coordinates, their rules, and large-scene evaluation."""

import numpy as np
import pytest

from genenv_jax.scenes import get_world

REGION_WORLDS = ("city_regions", "terrain_regions", "dungeon_regions")


@pytest.mark.parametrize("name", REGION_WORLDS)
def test_regions_are_windows_of_one_world(name):
  w = get_world(name)
  big = w.region(5, -40, 1000, 96, 80)
  inner = w.region(5, -40 + 23, 1000 + 17, 40, 48)  # overlaps, drawn alone
  for k in ("rgb", "labels", "height"):
    np.testing.assert_array_equal(getattr(big, k)[23:63, 17:65], getattr(inner, k))
  # Two overlapping regions agree on their overlap; the same call twice is the same; seeds differ.
  a, b = w.region(5, 0, 0, 48, 48), w.region(5, 16, 24, 48, 48)
  np.testing.assert_array_equal(a.labels[16:, 24:], b.labels[:32, :24])
  np.testing.assert_array_equal(a.rgb, w.region(5, 0, 0, 48, 48).rgb)
  assert not np.array_equal(a.rgb, w.region(6, 0, 0, 48, 48).rgb)
  # generate() is a region at a seeded offset.
  assert w.generate(3, 32).labels.shape == (32, 32)


@pytest.mark.parametrize("name", REGION_WORLDS)
def test_rules_hold_on_real_regions_of_every_size(name):
  w = get_world(name)
  for size, seeds in ((32, 12), (64, 6), (128, 3), (256, 2), (1024, 1)):
    for s in range(seeds):
      sc = w.region(100 + s, 37 * s, -53 * s, size, size)
      assert all(w.validity(sc.labels, sc.height).values()), (size, s, w.validity(sc.labels, sc.height))


def test_city_region_rules_fail_on_a_cut_road_and_a_building_on_water():
  from genenv_jax.scenes.city import BUILDING, GROUND, ROAD, WATER

  w = get_world("city_regions")
  ring = np.zeros((64, 64), bool)
  ring[14:50, 14:50] = True
  ring[17:47, 17:47] = False
  # A dry region (most of its roads inside the square).
  sc = next(w.region(s, 0, 0, 64, 64) for s in range(50) if not (w.region(s, 0, 0, 64, 64).labels == WATER).any())
  assert all(w.validity(sc.labels, sc.height).values())
  cut = sc.labels.copy()
  cut[ring] = GROUND  # the roads inside the square no longer reach the region's border
  assert (cut[17:47, 17:47] == ROAD).sum() > 0.1 * (cut == ROAD).sum()  # well above the 3% tolerance
  assert not w.validity(cut, sc.height)["road_connected"]
  # A building on water: find a region with water, put a block of building on it.
  wet = next(w.region(s, 0, 0, 64, 64) for s in range(50) if (w.region(s, 0, 0, 64, 64).labels == WATER).sum() > 600)
  lab, hgt = wet.labels.copy(), wet.height.copy()
  ys, xs = np.nonzero(lab == WATER)
  pick = np.arange(0, len(ys), 3)[: max(20, int(0.1 * (lab == BUILDING).sum()))]  # scattered, water around
  lab[ys[pick], xs[pick]] = BUILDING
  hgt[ys[pick], xs[pick]] = 0.5
  assert not w.validity(lab, hgt)["nothing_built_on_water"]


def test_terrain_region_rules_fail_on_snow_at_sea_level():
  from genenv_jax.scenes.terrain import SNOW

  w = get_world("terrain_regions")
  sc = next(w.region(s, 0, 0, 64, 64) for s in range(50) if (w.region(s, 0, 0, 64, 64).height < 0.3).mean() > 0.1)
  lab = sc.labels.copy()
  low = sc.height < 0.3
  lab[low] = SNOW
  assert low.sum() > 0.05 * low.size
  v = w.validity(lab, sc.height)
  assert not v["snow_is_high"] and not v["plausible_layout"]


def test_forest_is_unbounded_along_x_and_its_rules_hold_and_fail():
  from genenv_jax.scenes.forest import GROUND, SKY, TRUNK

  w = get_world("forest_regions")
  big = w.region(5, 0, -700, 32, 1024)
  inner = w.region(5, 0, -700 + 331, 32, 45)
  for k in ("rgb", "labels", "height"):
    np.testing.assert_array_equal(getattr(big, k)[:, 331:376], getattr(inner, k))
  assert not np.array_equal(big.rgb[:, :32], w.region(6, 0, -700, 32, 32).rgb)
  for width, seeds in ((32, 30), (64, 10), (128, 5), (256, 3), (1024, 2)):
    for s in range(seeds):
      sc = w.region(200 + s, 0, 91 * s - 400, 32, width)
      assert all(w.validity(sc.labels, sc.height).values()), (width, s, w.validity(sc.labels, sc.height))
  assert all(all(w.validity(g.labels, g.height).values()) for g in (w.generate(s, 32) for s in range(20)))
  sc = w.region(1, 0, 0, 32, 128)
  low_sky = sc.labels.copy()
  low_sky[26:, :] = SKY  # sky below the ground
  assert not w.validity(low_sky, sc.height)["sky_on_top"]
  floating = sc.labels.copy()
  floating[2:9, 40:43] = TRUNK  # trunks in the sky, far from any ground
  floating[2:9, 80:83] = TRUNK
  assert (floating == TRUNK).sum() > 0.03 * (floating == TRUNK).sum() + 30
  assert not w.validity(floating, sc.height)["trees_rooted"]
  assert (sc.labels == GROUND).any()
  with pytest.raises(ValueError, match=r"region y0=4, height=32 for world 'forest_regions': a side view spans rows"):
    w.region(0, 4, 0, 32, 64)
  with pytest.raises(ValueError, match=r"data.image_size=64: world 'forest_regions' is a side view 32 px tall"):
    w.generate(0, 64)


def test_region_arguments_are_checked():
  w = get_world("city_regions")
  with pytest.raises(
    ValueError, match=r"region height=8 for world 'city_regions': must be a multiple of 1 and at least 16"
  ):
    w.region(0, 0, 0, 8, 32)
  with pytest.raises(ValueError, match=r"region y0=1.5 for world 'city_regions': must be an integer"):
    w.region(0, 1.5, 0, 32, 32)
  with pytest.raises(ValueError, match=r"region x0=1099511627776 .* must be below 2\*\*40"):
    w.region(0, 0, 2**40, 32, 32)


def test_large_scene_evaluation_reports_ceiling_floor_and_model_on_1_and_8_devices(smoke_workdir):
  from genenv_jax import large_eval, parallel

  with pytest.raises(ValueError, match=r"scene_size=40x48: must be a multiple of the training size 16"):
    large_eval.evaluate(smoke_workdir, 40, 48, 2)
  got = [large_eval.evaluate(smoke_workdir, 64, 64, 2, mesh=parallel.make_mesh(k)) for k in (1, 8)]
  r = got[0]
  assert r["real"]["validity"] == 1.0 and r["real"]["crop_validity"] == 1.0
  assert r["untrained"]["crop_validity"] < 0.5 and r["untrained"]["crop_fd"] > 5 * r["real"]["crop_fd"]
  assert set(r["model"]) == set(r["real"]) and r["model"]["num_crops"] == 2 * 16
  assert 0.7 < r["real"]["seam"] < 1.3
  # Whole scenes at once: coarse appearance and large structures, real (the spread) far below untrained.
  assert {"coarse_fd", "coarse_kid", "coarse_c2st", "ms/water_log_areas_w1", "ms/spectrum_distance"} <= set(r["real"])
  assert r["real"]["ms/patch_log_areas_w1"] < r["untrained"]["ms/patch_log_areas_w1"]
  for name in ("real", "model", "untrained"):
    for k, v in r[name].items():
      assert got[1][name][k] == pytest.approx(v, rel=1e-4, abs=1e-6), (name, k)
  # 2 scenes per set: the 5-fold test and KID are undefined, not made up.
  assert r["real"]["coarse_c2st"] is None and r["model"]["coarse_fd"] is None
