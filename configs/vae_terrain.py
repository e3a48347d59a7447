r"""VAE on the built-in ``terrain`` world: RGB, biome label map and height map.

Commands:
  python train.py --config=configs/vae_terrain.py:smoke --workdir=runs/vae_terrain_smoke
  python train.py --config=configs/vae_terrain.py:cpu --workdir=runs/vae_terrain_cpu
  python train.py --config=configs/vae_terrain.py --workdir=runs/vae_terrain

Measured with ``:cpu`` on a 2-core CPU (5000 steps of batch 32, 9.9 min
wall), ``python eval.py --workdir=runs/vae_terrain_cpu --num_samples=1000``:

  ===========================  =========  =======  ====
  metric                       untrained  trained  real
  ===========================  =========  =======  ====
  test ELBO bits/dim           7.617      4.701
  test IW bits/dim (k=16)      7.613      4.686
  validity (all rules)         0.000      0.143    1.000
  statistics distance          7.515      1.046    0.067
  ===========================  =========  =======  ====

An independent per-pixel categorical fitted to the train split scores 6.393
bits/dim on the same dimensions.

Feature space (the shipped scene feature network), model (real held-out /
untrained): FD 105.41 (0.15 / 108.78); KID 5.389
(0.000 / 5.151); precision 0.000 (0.927); recall
0.000 (0.918). Prior samples are blurred (100% "blur" to the feature network).
All numbers: ``python tools/reproduce.py configs/vae_terrain.py:cpu`` writes
``results/vae_terrain_cpu.json`` (the README's results table).
"""

import ml_collections

from genenv_jax import config_utils


def get_config(arg=None):
  variant = config_utils.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.family = "vae"
  c.seed = 0
  c.data = config_utils.data_config("terrain", 64, 50_000, 2_000, ("rgb", "labels", "height"))
  c.vae = ml_collections.ConfigDict()
  c.vae.latent_size = 8
  c.vae.latent_channels = 16
  c.vae.width = 32
  c.vae.max_width = 256
  c.vae.beta = 1.0
  c.vae.iw_samples = 16
  c.vae.ema_decay = 0.999
  c.optim = config_utils.optim_config(lr=5e-4, b1=0.9, b2=0.999, warmup_steps=500, clip_norm=100.0)
  c.train = config_utils.train_config(batch_size=64, num_steps=50_000, every=2_500, eval_samples=512)
  c.mesh = ml_collections.ConfigDict({"num_devices": -1})
  if "cpu" in variant:
    c.data.image_size = 32
    c.data.num_train = 20_000
    c.data.num_test = 1_000
    c.vae.latent_size = 4
    c.vae.width = 16
    c.vae.max_width = 128
    c.vae.ema_decay = 0.99
    c.optim.warmup_steps = 100
    c.train = config_utils.train_config(batch_size=32, num_steps=5_000, every=1_000, eval_samples=256)
  if "smoke" in variant:
    c.vae.latent_size = 4
    c.vae.latent_channels = 4
    c.vae.width = 8
    c.vae.max_width = 16
    c.vae.iw_samples = 4
    c.optim.warmup_steps = 1
    config_utils.smoke(c)
  return c
