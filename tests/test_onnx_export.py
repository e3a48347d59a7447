"""ONNX exports for engines: onnxruntime on the CPU reproduces the JAX network and a whole flow-matching sample."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genenv_jax.exports import onnx_model
from genenv_jax.families import flow_matching as fm

pytest.importorskip("onnxruntime")
pytest.importorskip("jax2onnx")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fm_model(tmp_path_factory):
  from tests.test_server import untrained

  return untrained("configs/fm_city.py:smoke", "city_regions", 16, tmp_path_factory.mktemp("fm"), jitter=0.05)


def test_flow_matching_velocity_and_a_whole_sample_equal_jax(fm_model, tmp_path):
  card = onnx_model.export(fm_model, str(tmp_path), batch=2, solver="midpoint", steps=6)
  assert card["opset"] == 15 and card["kind"] == "flow_matching_velocity"
  assert json.load(open(tmp_path / "model.json"))["sampler"]["times"][-1] == 1.0
  sess, _ = onnx_model.session(str(tmp_path))
  cv = fm_model.family.canvas
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 16, 16, cv.channels)).astype(np.float32)
  t, lab = np.array([0.1, 0.7], np.float32), np.zeros((2,), np.int32)
  want = np.asarray(cv.velocity(fm_model.params, x, t, lab))
  got = sess.run(None, {"x": x, "t": t, "label": lab})[0]
  assert np.abs(want).max() > 1e-2  # a field that is not zero
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  # The documented loop around the ONNX field gives the family's own sample from the same noise.
  key = jax.random.PRNGKey(3)
  kz, _ = jax.random.split(key)
  shape = (16, 16, cv.channels)
  noise = np.asarray(jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(kz, i), shape))(jnp.arange(2)))
  jax_sample = np.asarray(fm_model.family.sample(fm_model.params, key, 2, cond=0, solver="midpoint", steps=6))
  v = lambda xx, tt: cv.velocity(fm_model.params, xx, tt, jnp.zeros((2,), jnp.int32))  # noqa: E731
  np.testing.assert_allclose(np.asarray(cv.finalize(fm.solve(v, noise, "midpoint", 6))), jax_sample, atol=1e-5)
  onnx_sample = onnx_model.sample_with_onnx(str(tmp_path), noise)
  cont = slice(0, 3)  # RGB: continuous values; labels: the same argmax almost everywhere
  np.testing.assert_allclose(onnx_sample[..., cont], jax_sample[..., cont], atol=1e-4)
  assert (onnx_sample[..., 3:8].argmax(-1) == jax_sample[..., 3:8].argmax(-1)).mean() > 0.999


def test_gan_generator_equals_jax_and_bad_requests_are_refused(tmp_path):
  from tests.test_server import untrained

  gan = untrained("configs/gan_city.py:smoke", "city_regions", 16, tmp_path / "g", jitter=0.05)
  card = onnx_model.export(gan, str(tmp_path / "o"))
  sess, _ = onnx_model.session(str(tmp_path / "o"))
  z = np.random.default_rng(1).standard_normal(card["inputs"][0]["shape"]).astype(np.float32)
  lab = np.zeros((1,), np.int32)
  want = np.asarray(gan.family.tiling.render(gan.params, z, lab))
  np.testing.assert_allclose(sess.run(None, {"z": z, "label": lab})[0], want, atol=1e-4)
  with pytest.raises(ValueError, match=r"opset=30: must be in 7..23"):
    onnx_model.export(gan, str(tmp_path / "p"), opset=30)
  r = subprocess.run(
    [sys.executable, os.path.join(ROOT, "tools/export_onnx.py"), "--output", str(tmp_path / "q")],
    capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert r.returncode == 1 and "give exactly one of --workdir and --model" in r.stderr
