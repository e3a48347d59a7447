r"""GAN on the built-in ``city`` world: structured top-down city maps.

The generator draws 9 channels per pixel: RGB rendering, a one-hot label map
(ground, road, building, park, water) and a height map; validity and
statistics are judged on the argmax labels and the heights.

Commands:
  python train.py --config=configs/gan_city.py:smoke --workdir=runs/city_smoke  # tiny (first run: 1-3 min)
  python train.py --config=configs/gan_city.py:cpu --workdir=runs/gan_city_cpu      # <15 min, 2 cores
  python train.py --config=configs/gan_city.py --workdir=runs/city              # accelerator

Measured with ``:cpu`` on a 2-core CPU (3000 steps, ~11 min alone), scored by
``python eval.py --workdir=runs/gan_city_cpu --num_samples=1000`` over 1000 scenes:

  =====================  =========  =======  ====
  metric                 untrained  trained  real
  =====================  =========  =======  ====
  validity (all rules)   0.000      0.053    1.000
  stats distance         5.508      1.132    0.088
  road network connected 0.251      0.117    1.000
  C2ST pixels (0.5 best) 1.000      1.000    0.493
  =====================  =========  =======  ====

"real" is held-out real scenes (the ceiling), "untrained" the same generator
at initialisation (the floor).

Feature space (the shipped scene feature network), model (real held-out /
untrained): FD 27.36 (0.30 / 93.64); KID 1.346
(0.011 / 4.677); precision 0.089 (0.909); recall
0.161 (0.931); C2ST on features 0.99 (0.51 / 1.00). Its samples look blotchy
to the feature network (86% "quantize"). With ICNR-initialised pixel-shuffle
upsamplings (this round); the round-1 initialisation reached validity 0.149
and FD 34.01 at the same budget, ``--config.model.upsample=bilinear`` 0.154
and 35.93 (one run each: the GAN still improves fast at step 3000, and one
run per setting does not separate them; "The 8-px stripe" in docs/large-scenes.md
compares them on large scenes).
Large scenes (``eval.py --scene_size=256x256 --num_samples=16``): 53% of
their 32-px crops pass the region rules of ``city_regions`` (its own samples:
35%), whole 256-px scenes 0%.

Trained on regions of the unbounded city instead
(``python tools/reproduce.py configs/gan_city.py:cpu --override=data.world=city_regions
--name=gan_city_regions_cpu``, same 3000 steps): its own 32-px samples pass
the region rules 54.2% of the time (FD 36.06, real 0.15 / untrained 72.45;
KID 1.788; precision 0.077, recall 0.049), and its tiled 256x256 scenes pass
them whole 16 of 16 times (crops 62.1%, seam 0.993, real 0.986); at
1024x1024 4 of 4 (crops 64.5%, seam 0.998, real 0.998).
All numbers: ``python tools/reproduce.py configs/gan_city.py:cpu`` writes
``results/gan_city_cpu.json`` (the results table, docs/results.md). The full variant has not been run here (no
accelerator was available to this project's sessions yet).
"""

import ml_collections

from genenv_jax import config_utils


def get_config(arg=None):
  variant = config_utils.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.family = "gan"
  c.seed = 0

  c.data = config_utils.data_config("city", 64, 50_000, 2_000, ("rgb", "labels", "height"))
  # data.conditional: condition on the scene class (inland/river/coast)

  c.model = ml_collections.ConfigDict()
  c.model.latent_size = 4  # spatial latent grid side; the image is this times 2^k
  c.model.latent_channels = 64
  c.model.g_width = 32
  c.model.g_max_width = 256
  c.model.d_width = 32
  c.model.d_max_width = 256
  # 'shuffle': pixel shuffle (conv to 4x channels, depth-to-space), its four sub-pixel
  # kernels started equal ('icnr'; 'lecun' is round 1's). 'bilinear': bilinear 2x then a
  # 3x3 conv, one kernel for every output pixel: no 8-px stripe in large scenes, but at the
  # :cpu budget its tiled canvases pass the city rules less often (docs/large-scenes.md, "The 8-px stripe").
  c.model.upsample = "shuffle"
  c.model.upsample_init = "icnr"
  # Each network's convolutions run on this many interleaved slices of the batch: independent ops that
  # XLA:CPU runs concurrently on its worker threads (docs/benchmarks.md, "Where the step's time goes"). 1 on
  # accelerators, where one convolution fills the device.
  c.model.chunks = 1

  c.gan = ml_collections.ConfigDict()
  c.gan.loss = "ns"  # 'ns' (non-saturating) | 'hinge'
  c.gan.r1_gamma = 1.0
  c.gan.mbstd_group = 4  # minibatch standard deviation in D (against mode collapse)
  c.gan.r1_every = 4  # R1 on every 4th image of the batch (cheaper double backward)
  c.gan.ema_decay = 0.999
  c.gan.augment = False  # DiffAugment, for small datasets
  c.gan.aug_translation = 0.125
  c.gan.aug_cutout = 0.25

  c.optim = config_utils.optim_config(lr=2e-4, b1=0.0, b2=0.99, warmup_steps=100, clip_norm=10.0)
  del c.optim.lr
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.train = config_utils.train_config(batch_size=64, num_steps=50_000, every=2_500, eval_samples=512)
  c.mesh = ml_collections.ConfigDict({"num_devices": -1})

  if "cpu" in variant:
    c.data.image_size = 32
    c.data.num_train = 20_000
    c.data.num_test = 1_000
    c.model.g_width = 16
    c.model.g_max_width = 128
    c.model.d_width = 16
    c.model.d_max_width = 128
    c.model.latent_channels = 32
    c.train = config_utils.train_config(batch_size=32, num_steps=3_000, every=1_000, eval_samples=256)
    c.train.log_every = 50
    c.train.ckpt_every = 500
    c.gan.ema_decay = 0.99
  if "smoke" in variant:
    c.model.latent_channels = 8
    c.model.g_width = 8
    c.model.g_max_width = 16
    c.model.d_width = 8
    c.model.d_max_width = 16
    config_utils.smoke(c)
  return c
