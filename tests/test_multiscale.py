"""Large-structure statistics of whole scenes: zero against themselves, large when lakes become a carpet of blobs."""

import numpy as np
import pytest

from genenv_jax.metrics import multiscale as ms
from genenv_jax.scenes import get_world


def _set(world, seeds, size=256):
  w = get_world(world)
  scenes = [w.region(s, 0, 0, size, size) for s in seeds]
  return np.stack([s.labels for s in scenes]), np.stack([s.height for s in scenes]), w.class_names


def test_drainage_and_spectrum_on_known_surfaces():
  ramp = np.add.outer(np.arange(64.0), np.zeros(64))  # falls towards row 0: everything drains out
  assert ms.drainage(ramp) == (1.0, pytest.approx(63 / 64))
  yy, xx = np.mgrid[0:64, 0:64] - 31.5
  bowl = yy**2 + xx**2  # every path ends in the pit at the centre (the rim pixels leave through the border)
  share, _ = ms.drainage(bowl)
  assert share < 0.1
  # Brownian surfaces (spectrum ~ f^-2... here f^-beta) have the slope they were made with.
  rng = np.random.default_rng(0)
  f = np.hypot(np.fft.fftfreq(256)[:, None], np.fft.fftfreq(256)[None, :])
  f[0, 0] = 1.0
  field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(256, 256))) * f ** (-1.5)))
  fr, p = ms.radial_spectrum(field)
  slope = np.polyfit(np.log10(fr[4:-4]), np.log10(p[4:-4]), 1)[0]
  assert slope == pytest.approx(-3.0, abs=0.4)


@pytest.mark.parametrize("world", ["terrain_regions", "city_regions"])
def test_a_real_set_against_itself_is_zero_and_real_vs_real_is_small(world):
  lab, h, names = _set(world, range(4))
  real = ms.evaluate(lab, h, names)
  same = ms.compare(real, real)
  assert all(v == 0.0 for k, v in same.items() if "/" not in k), same
  lab2, h2, _ = _set(world, range(100, 104))
  other = ms.compare(real, ms.evaluate(lab2, h2, names))
  assert other["spectrum_distance"] < 0.2 and other["patch_log_areas_w1"] < 0.15


def test_lakes_shuffled_into_small_blobs_are_far_from_real():
  lab, h, names = _set("terrain_regions", range(6))
  water = names.index("water")
  real = ms.evaluate(lab[:3], h[:3], names)
  spread = ms.compare(real, ms.evaluate(lab[3:], h[3:], names))
  blobs = lab[3:].copy()
  rng = np.random.default_rng(0)
  for i in range(len(blobs)):
    n_water = int((blobs[i] == water).sum())
    blobs[i][blobs[i] == water] = names.index("grass")
    cells = rng.permutation(np.argwhere(np.ones((256 // 4, 256 // 4), bool)))[: max(1, n_water // 4)]
    for y, x in cells:  # the same amount of water, as 2x2 ponds on a 4-px grid
      blobs[i, 4 * y : 4 * y + 2, 4 * x : 4 * x + 2] = water
  assert (blobs == water).sum() > 0.2 * (lab[3:] == water).sum()
  carpet = ms.compare(real, ms.evaluate(blobs, h[3:], names))
  for k in ("water_bodies_per_mpx", "largest_water_share", "water_log_areas_w1"):
    assert carpet[k] > 5 * spread[k] + 1e-3, (k, carpet[k], spread[k])
  # The jackknife reads how far a figure moves with the draw: one flooded scene among three real ones moves the
  # largest body's share from its distance without that scene (the range's low end) to far above it.
  others = ms.evaluate(lab[3:], h[3:], names)
  flooded = ms.evaluate(np.full_like(lab[3:4], water), h[3:4], names)
  jk = ms.jackknife(real, others + flooded)
  assert jk["largest_water_share"][0] == pytest.approx(ms.compare(real, others)["largest_water_share"])
  assert jk["largest_water_share"][1] > jk["largest_water_share"][0] + 0.1
  assert set(jk) == {k for k in ms.compare(real, others) if "/" not in k}
  with pytest.raises(ValueError, match="jackknife: 2 scenes; need 3 or more"):
    ms.jackknife(real, others[:2])


def test_coarse_scores_of_whole_scenes_against_real_regions():
  from genenv_jax import large_eval

  w = get_world("terrain_regions")
  coarse = large_eval.coarse_reference(w, 6, 128, 128, None)
  real = large_eval.real_regions(w, 6, 128, 128, 0)
  r = large_eval.score_coarse(w, real, coarse, None)
  assert r["coarse_c2st"] is not None and 0.0 <= r["coarse_c2st"] <= 1.0
  flat = {k: v.copy() for k, v in real.items()}
  flat["height"][:] = flat["height"].mean()  # no relief at all: its spectrum and drainage are nothing like real
  f = large_eval.score_coarse(w, flat, coarse, None)
  assert f["ms/spectrum_distance"] > 3 * r["ms/spectrum_distance"] + 1


def test_real_sets_give_the_spread_a_flat_world_lies_past():
  """tools/large_spread.py --real_sets: set 0 is evaluate's real set, the sets differ, and a scene with no relief
  sits past every real draw (no real set as far)."""
  from genenv_jax import large_eval

  w = get_world("terrain_regions")
  coarse = large_eval.coarse_reference(w, 3, 96, 96, None)
  sets = large_eval.real_sets(w, 4, 3, 96, 96, coarse, None)
  assert len(sets) == 4
  first = large_eval.score_coarse(w, large_eval.real_regions(w, 3, 96, 96, 0), coarse, None)
  assert sets[0] == first
  spread = [s["ms/spectrum_distance"] for s in sets]
  assert len(set(spread)) == 4 and all(np.isfinite(spread))
  flat = large_eval.real_regions(w, 3, 96, 96, 0)
  flat["height"][:] = flat["height"].mean()
  far = large_eval.score_coarse(w, flat, coarse, None)["ms/spectrum_distance"]
  assert large_eval.real_as_far(far, spread) == 0.0
  assert large_eval.real_as_far(min(spread), spread) == 1.0
  with pytest.raises(ValueError, match=r"real_sets=0: need 1 or more"):
    large_eval.real_sets(w, 0, 3, 96, 96, coarse, None)


def test_height_statistics_of_any_height_model_read_real_against_itself_as_zero_and_noise_as_far():
  """eval.py's terrain statistics for models with a height channel (own DEMs included)."""
  world = get_world("terrain")
  real = np.stack([world.generate(i, 32).height for i in range(40)])
  other = np.stack([world.generate(100 + i, 32).height for i in range(40)])
  noise = np.random.default_rng(0).random((40, 32, 32))
  got = ms.height_sets({"real": real, "same": real, "other": other, "noise": noise})
  assert set(got) == {"same", "other", "noise"}
  assert all(v == 0 for k, v in got["same"].items() if "/" not in k)
  for k in ("spectrum_slope", "mean_slope", "spectrum_distance"):
    assert got["noise"][k] > 5 * got["other"][k], k


def test_a_lake_crossed_by_bridges_is_one_body_and_a_shore_road_joins_nothing():
  names = ("ground", "road", "water", "building")
  lab = np.zeros((64, 64), np.uint8)
  lab[10:50, 10:50] = 2  # a lake
  lab[:, 20:22] = 1  # an avenue across it (a bridge, 2 px)
  lab[30:33, :] = 1  # a 3-px street across it
  lab[58:64, 30:60] = 2  # a second lake to the south ...
  lab[56:58, 30:60] = 1  # ... with a road along its shore only (water on one side)
  st = ms.scene_statistics(lab, None, names)
  assert st["water_bodies_per_mpx"] * lab.size / 1e6 == pytest.approx(2)
  assert st["largest_water_share"] == pytest.approx(40 * 40 / lab.size)  # the bridges count as the lake's
  road = lab == 1
  bridged = ms.bridged_water(lab == 2, road)
  assert not bridged[56:58].any() and not bridged[0:10, 20:22].any()  # shore road, avenue on land


def test_real_city_lakes_are_not_cut_into_strips_by_their_bridges():
  lab, _, names = _set("city_regions", range(3), size=512)
  water, road = lab == names.index("water"), lab == names.index("road")
  for i in range(len(lab)):
    cut = len(ms.component_sizes(water[i]))
    whole = len(ms.component_sizes(ms.bridged_water(water[i], road[i])))
    assert cut >= 5 * whole and whole >= 1, (i, cut, whole)
    # Only road pixels become water, and only where both sides are water.
    extra = ms.bridged_water(water[i], road[i]) & ~water[i]
    assert extra.any() and road[i][extra].all()
