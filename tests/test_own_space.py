"""The own-space encoder: deterministic, cached, and it tells real from a collapsed model."""

import numpy as np
import pytest

from genenv_jax import layout
from genenv_jax.metrics import own_space
from genenv_jax.scenes import get_world


@pytest.fixture(scope="module")
def forest():
  w = get_world("forest")
  return np.stack([w.generate(20_000 + i, 32).rgb for i in range(640)])


def test_own_space_is_deterministic_cached_and_tells_a_collapsed_model_from_real(forest, tmp_path):
  lay = layout.Layout(("rgb",))
  train, ref, held = {"rgb": forest[:400]}, {"rgb": forest[400:520]}, {"rgb": forest[520:]}
  a = own_space.OwnSpace(train, lay, str(tmp_path), steps=30)
  b = own_space.OwnSpace(train, lay, None, steps=30)  # trained again, no cache
  np.testing.assert_array_equal(a.features(held), b.features(held))
  c = own_space.OwnSpace(train, lay, str(tmp_path), steps=30)  # read back from the workdir's cache
  assert c.meta["digest"] == a.meta["digest"] and c.meta["seconds"] == a.meta["seconds"]
  np.testing.assert_array_equal(c.features(held), a.features(held))
  d = own_space.OwnSpace({"rgb": forest[:300]}, lay, str(tmp_path), steps=30)  # other images: not the cache
  assert d.meta["digest"] != a.meta["digest"]
  reference = a.features(ref)
  real = a.compare(reference, held)
  collapsed = a.compare(reference, {"rgb": np.repeat(held["rgb"][:1], len(held["rgb"]), 0)})
  assert set(real) == {"fd_own", "kid_own", "kid_std_own", "precision_own", "recall_own"}
  assert real["fd_own"] < 0.25 * collapsed["fd_own"], (real, collapsed)
  assert real["recall_own"] > 0.5 and collapsed["recall_own"] < 0.05


def test_the_encoder_reads_every_plane_the_data_has():
  assert own_space.planes(layout.Layout(("rgb", "labels", "height"), ("a", "b"))) == ["rgb", "height"]
  assert own_space.planes(layout.Layout(("gray",))) == ["gray"]
  assert own_space.planes(layout.Layout(("height",))) == ["height"]
  x = own_space.to_input({"gray": np.full((2, 64, 64), 0.5), "height": np.ones((2, 64, 64))}, ["gray", "height"])
  assert x.shape == (2, 32, 32, 2) and np.allclose(x[..., 0], 0.0) and np.allclose(x[..., 1], 1.0)
