r"""Flow matching on the built-in ``city`` world: the same 9 channels as ``gan_city``.

A U-Net velocity field trained on straight noise-to-scene paths; samples by
an ODE solve (``fm.solver``, ``fm.sample_steps``). The label channels of the
end point are snapped to one-hot, so the city rules judge the samples.

Commands:
  python train.py --config=configs/fm_city.py:smoke --workdir=runs/fm_city_smoke
  python train.py --config=configs/fm_city.py:cpu --workdir=runs/fm_city_cpu
  python train.py --config=configs/fm_city.py --workdir=runs/fm_city

Measured with ``:cpu`` on a 2-core CPU (2000 steps of batch 32, 3.0 steps/s
when alone: the GAN's ``:cpu`` budget of 3000 steps at ~5 steps/s; 20 min wall
here with tests running beside it), samples by the midpoint rule, 16 steps
(32 network evaluations), ``python eval.py --workdir=runs/fm_city_cpu
--num_samples=1000``:

  =====================  =========  =======  =====  ==============
  metric                 untrained  trained  real   gan_city :cpu
  =====================  =========  =======  =====  ==============
  validity (all rules)   0.000      0.389    1.000  0.053
  stats distance         5.309      0.553    0.088  1.132
  road network connected 0.000      0.466    1.000  0.117
  FD                     179.68     19.89    0.30   27.36
  KID                    10.231     1.009    0.011  1.346
  precision              0.000      0.258    0.909  0.089
  recall                 0.000      0.163    0.931  0.161
  C2ST pixels            1.000      1.000    0.493  1.000
  =====================  =========  =======  =====  ==============

The issue's targets (validity >= 0.5, FD <= 10 in the GAN's wall time) are
missed by 0.11 and by 2x: the road network is the rule that fails (46.6%
connected; buildings on water and heights pass 99%), and 88% of samples look
"quantize"-blotchy to the feature network (speckle left by an undertrained
field). The next levers: more steps (the loss still falls at step 2000) and
a wider U-Net on an accelerator. All numbers: ``python tools/reproduce.py
configs/fm_city.py:cpu`` writes ``results/fm_city_cpu.json``.

Trained on regions of the unbounded city instead (``python tools/reproduce.py
configs/fm_city.py:cpu --override=data.world=city_regions
--name=fm_city_regions_cpu``, the same 2000 steps, 26 min wall beside the
test suite): its samples pass the region rules 89.8% of the time (roads
reach the border 97.9%), FD 12.93 (real 0.15 / untrained 157.20), KID 0.561,
precision 0.496, recall 0.197. Its 256x256 canvases (``eval.py
--scene_size=256x256 --num_samples=4``) pass the region rules whole 4 of 4
times, 84.0% of their 32-px crops pass, crop FD 16.53 (real 1.06), seam
1.018 (real 0.934, untrained 0.999).
"""

import ml_collections

from genenv_jax import config_utils


def get_config(arg=None):
  variant = config_utils.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.family = "flow_matching"
  c.seed = 0
  c.data = config_utils.data_config("city", 64, 50_000, 2_000, ("rgb", "labels", "height"))
  c.fm = config_utils.fm_config(widths=(64, 128, 256, 256), attention=True)
  c.optim = config_utils.optim_config(lr=2e-4, b1=0.9, b2=0.999, warmup_steps=1000, clip_norm=1.0)
  c.train = config_utils.train_config(batch_size=64, num_steps=100_000, every=5_000, eval_samples=512)
  c.mesh = ml_collections.ConfigDict({"num_devices": -1})
  if "cpu" in variant:
    c.data.image_size = 32
    c.data.num_train = 20_000
    c.data.num_test = 1_000
    c.fm.widths = (16, 32, 64)  # 656k parameters, as many as gan_city's :cpu generator
    c.fm.ema_decay = 0.995
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 200
    # ~3 steps/s on 2 cores: 2000 steps fit the GAN's :cpu wall time (3000 steps at ~5 steps/s).
    c.train = config_utils.train_config(batch_size=32, num_steps=2_000, every=1_000, eval_samples=256)
    c.train.log_every = 50
    c.train.ckpt_every = 500
  if "smoke" in variant:
    c.fm.widths = (8, 16)
    c.fm.attention = False
    c.fm.sample_steps = 2
    c.fm.likelihood_steps = 2
    config_utils.smoke(c)
  return c
