"""``data.river_field``: a signed field whose zero set follows thin water, from labels alone."""

import numpy as np
import pytest

from genenv_jax.data import coarse, river_field
from genenv_jax.scenes import get_world

NAMES = ("ground", "road", "building", "park", "water")
G, R, W = 0, 1, 4


def test_a_river_flips_the_sign_and_a_lake_does_not_cut_the_land():
  lab = np.full((64, 96), G, np.uint8)
  lab[:, 40:42] = W  # a 2-px river, top to bottom
  lab[8:24, 70:90] = W  # a lake on the right bank
  f, odd = river_field.signed_field(lab, NAMES)
  assert odd == 0
  left, right = f[:, :38], f[:, 44:]
  assert (np.sign(left) == np.sign(left[0, 0])).all() and (np.sign(right) == -np.sign(left[0, 0])).all()
  assert f.min() >= -1 and f.max() <= 1 and abs(f[0, 0]) == 1  # saturates 24 px from water
  assert abs(f[:, 40:42]).max() < 0.05  # near 0 on the river
  cross = river_field.crossings(f)
  signs = {float(np.sign(river_field.signed_field(lab, NAMES, seed=s)[0][0, 0])) for s in range(8)}
  assert signs == {-1.0, 1.0}  # the seed draws the sign, not where it changes:
  assert (river_field.crossings(river_field.signed_field(lab, NAMES, seed=3)[0]) == cross).all()
  assert cross[:, 39:42].any(1).all() and not cross[:, :38].any() and not cross[:, 44:].any()
  # Bridged: a road across the river is counted as water (the banks stay apart); a road elsewhere is land.
  lab[30:32, :] = R
  f2, _ = river_field.signed_field(lab, NAMES)
  assert np.sign(f2[0, 0]) != np.sign(f2[0, -1]) and np.sign(f2[31, 0]) == np.sign(f2[0, 0])


def test_a_closed_river_has_opposite_signs_inside_and_out_and_no_loose_ends():
  yy, xx = np.mgrid[:80, :80]
  ring = np.abs(np.hypot(yy - 40, xx - 40) - 20) < 1.2
  lab = np.where(ring, W, G).astype(np.uint8)
  f, odd = river_field.signed_field(lab, NAMES)
  assert odd == 0 and np.sign(f[40, 40]) == -np.sign(f[0, 0])
  c = coarse.downsample(f[..., None], 4)[..., 0]
  cross = river_field.crossings(c)
  from scipy import ndimage

  n = ndimage.label(cross, np.ones((3, 3)))[1]
  assert n == 1  # one closed line at the coarse scale, not pieces


def test_a_real_regions_coarse_crossings_lie_on_its_water_and_bad_input_is_named():
  world = get_world("city_regions")
  sc = world.region(12, 0, 0, 256, 256)
  f, _ = river_field.signed_field(sc.labels, world.class_names)
  c = coarse.downsample(f[..., None], 8)[..., 0]
  wet = coarse.downsample((sc.labels == world.class_names.index("water")).astype(np.float32)[..., None], 8)[..., 0]
  near = wet.copy()
  near[:-1] = np.maximum(near[:-1], wet[1:])
  near[:, :-1] = np.maximum(near[:, :-1], wet[:, 1:])
  cross = river_field.crossings(c)
  assert cross.sum() > 20 and (near[cross] > 0).all()  # 92 crossing blocks measured, every one beside water
  with pytest.raises(ValueError, match=r"class 'river': not one of the world's classes"):
    river_field.signed_field(sc.labels, world.class_names, water="river")
  with pytest.raises(ValueError, match=r"labels of shape \(2, 4, 4\): must be \[H, W\]"):
    river_field.signed_field(np.zeros((2, 4, 4), np.uint8), NAMES)
  with pytest.raises(ValueError, match=r"wide=0"):
    river_field.signed_field(sc.labels, world.class_names, wide=0)
  f_dry, odd = river_field.signed_field(np.zeros((16, 16), np.uint8), NAMES)
  assert odd == 0 and (abs(f_dry) == 1).all() and not river_field.crossings(f_dry).any()
