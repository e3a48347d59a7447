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
  test ELBO bits/dim           7.617      4.700
  test IW bits/dim (k=16)      7.613      4.686
  validity (all rules)         0.000      0.148    1.000
  statistics distance          7.699      1.070    0.083
  ===========================  =========  =======  ====

An independent per-pixel categorical fitted to the train split scores 6.393
bits/dim on the same dimensions.

Feature space (the shipped scene feature network), model (real held-out /
untrained): FD 105.84 (0.21 / 108.10); KID 5.441
(0.003 / 5.127); precision 0.000 (0.905); recall
0.000 (0.916); C2ST pixels 1.00 (real 0.50). Prior samples are blurred (100% "blur" to the feature network).
All numbers: ``python tools/reproduce.py configs/vae_terrain.py:cpu`` writes
``results/vae_terrain_cpu.json`` (the results table, docs/results.md).
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
  # 'gaussian': sample z ~ N(0, I). 'flow_matching': a U-Net velocity field over the latent
  # grid, trained alongside on posterior samples, samples z by an ODE (prior_steps midpoint steps).
  c.vae.prior = "gaussian"
  c.vae.prior_widths = (64, 128)  # prior U-Net features per latent resolution (2x pooling between)
  c.vae.prior_steps = 16
  # The ELBO's encoder and decoder run on this many interleaved slices of the batch: independent ops
  # that XLA:CPU runs concurrently on its worker threads (docs/benchmarks.md, "Where the step's time goes"); 1 on
  # accelerators.
  c.vae.chunks = 1
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
    c.vae.prior_widths = (8, 16)
    c.vae.prior_steps = 2
    c.optim.warmup_steps = 1
    config_utils.smoke(c)
  return c
