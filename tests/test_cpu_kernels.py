"""train.cpu_convolutions: 'eigen' moves the step's convolutions out of YNNPACK and computes the same step."""

import os

import helpers
import pytest

from genenv_jax import config_utils, cpu_kernels, parallel, training, workdir


def test_eigen_takes_the_convolutions_out_of_ynnpack_and_only_them(smoke_config):
  """The training loop's own compiled step (training.Setup.step_fn), not a step jitted here, obeys the option."""
  counts = {}
  for choice in cpu_kernels.CHOICES:
    su = training.Setup(smoke_config(f"train.cpu_convolutions={choice!r}"), mesh=parallel.make_mesh(1))
    text = su.step_fn.lower(su.abstract_state(), su.loader.global_batch_at(0)).compile().as_text()
    counts[choice] = helpers.convolutions_in_and_out_of_ynnpack(text)
  (xla_in, xla_out, _), (eigen_in, eigen_out, eigen_ynn) = counts["xla"], counts["eigen"]
  assert xla_in > 0, counts  # this jaxlib's default: YNNPACK runs (forward) convolutions
  assert eigen_in == 0 and eigen_out == xla_in + xla_out, counts  # every convolution is XLA's own (Eigen)
  assert eigen_ynn > 0, counts  # dots and reductions stay with YNNPACK


@pytest.mark.parametrize("num_devices", [1, 8])
def test_eigen_step_equals_the_default_step(smoke_config, num_devices):
  """The CPU speed option computes the reference step (XLA:CPU's default kernels) up to float rounding."""
  reference, optimised = (smoke_config(f"train.cpu_convolutions={k!r}") for k in ("xla", "eigen"))
  helpers.assert_same_steps(reference, optimised, num_devices)


def test_choice_is_checked_and_accelerators_ignore_it(smoke_config):
  with pytest.raises(ValueError, match=r"train.cpu_convolutions='onednn': must be one of \['xla', 'eigen', 'auto'\]"):
    config_utils.validate(smoke_config("train.cpu_convolutions='onednn'"))
  assert cpu_kernels.compiler_options("eigen", "gpu") is None and cpu_kernels.compiler_options("xla", "cpu") is None
  # A run written before the option existed reads back with XLA:CPU's default.
  old = {"train": {"batch_size": 8}}
  read = workdir.with_legacy_defaults(old, {"train": {"cpu_convolutions": "eigen"}})
  assert read["train"]["cpu_convolutions"] == "xla"


def test_new_cpu_runs_record_eigen_and_old_runs_keep_xla_on_resume(smoke_config, tmp_path):
  """The fast kernels are the default for a new CPU run; a run from before keeps its kernels (same bytes)."""
  import json

  new = str(tmp_path / "new")
  training.run(smoke_config("train.num_steps=1", "train.feature_net='none'"), new)
  assert json.load(open(os.path.join(new, "run.json")))["config"]["train"]["cpu_convolutions"] == "eigen"
  with pytest.raises(ValueError, match=r"train.cpu_convolutions: 'eigen' here vs 'xla' requested"):
    training.run(smoke_config("train.num_steps=2", "train.feature_net='none'", "train.cpu_convolutions='xla'"), new)
  # 'auto' on an existing run: what it recorded; run.json files from before the default: 'xla' or no key at all.
  for name, recorded, want in (("new", "eigen", "eigen"), ("old", "xla", "xla"), ("older", None, "xla")):
    wd = workdir.Workdir(str(tmp_path / name))
    cfg = smoke_config()
    raw = workdir.config_dict(cfg)
    raw["train"].pop("cpu_convolutions")
    if recorded:
      raw["train"]["cpu_convolutions"] = recorded
    wd.create()
    workdir.write_json(wd.run_json, {"config": raw})
    training._resolve_kernels(cfg, wd)
    assert cfg.train.cpu_convolutions == want, name
