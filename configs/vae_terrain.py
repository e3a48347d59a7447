r"""VAE on the built-in ``terrain`` world: RGB, biome label map and height map.

Commands:
  python train.py --config=configs/vae_terrain.py:smoke --workdir=runs/vae_terrain_smoke
  python train.py --config=configs/vae_terrain.py:cpu --workdir=runs/vae_terrain_cpu
  python train.py --config=configs/vae_terrain.py --workdir=runs/vae_terrain

Metrics: test ELBO and importance-weighted bits/dim (``eval/elbo_bpd``,
``eval/iw_bpd``), validity and statistics distance of samples. Not yet
measured in a full ``:cpu`` run (see README).
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
