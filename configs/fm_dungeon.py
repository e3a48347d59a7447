r"""Flow matching on the built-in ``dungeon`` world: roguelike levels of rooms, corridors and doors.

3 RGB channels, 7 one-hot label channels (rock, floor, corridor,
door, water, entrance, exit) and a height channel (walls 3 m, water 0). The
label channels of the end point are snapped to one-hot, so the level rules
(``genenv_jax.scenes.levels``: everything walkable connected, an
entrance-to-exit path, corridors 2 px wide, no door into rock, at least two
rooms) judge the samples.

Commands:
  python train.py --config=configs/fm_dungeon.py:smoke --workdir=runs/fm_dungeon_smoke
  python train.py --config=configs/fm_dungeon.py:cpu --workdir=runs/fm_dungeon_cpu
  python tools/reproduce.py configs/fm_dungeon.py:cpu   # writes results/fm_dungeon_cpu.json

The ``:cpu`` variant is ``fm_city``'s (same U-Net, 2000 steps of batch 32).
MEASURED: see below.
"""

import ml_collections

from genenv_jax import config_utils


def get_config(arg=None):
  variant = config_utils.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.family = "flow_matching"
  c.seed = 0
  c.data = config_utils.data_config("dungeon", 64, 50_000, 2_000, ("rgb", "labels", "height"))
  c.fm = config_utils.fm_config(widths=(64, 128, 256, 256), attention=True)
  c.optim = config_utils.optim_config(lr=2e-4, b1=0.9, b2=0.999, warmup_steps=1000, clip_norm=1.0)
  c.train = config_utils.train_config(batch_size=64, num_steps=100_000, every=5_000, eval_samples=512)
  c.mesh = ml_collections.ConfigDict({"num_devices": -1})
  if "cpu" in variant:
    c.data.image_size = 32
    c.data.num_train = 20_000
    c.data.num_test = 1_000
    c.fm.widths = (16, 32, 64)
    c.fm.ema_decay = 0.995
    c.optim.lr = 1e-3
    c.optim.warmup_steps = 200
    c.train = config_utils.train_config(batch_size=32, num_steps=2_000, every=1_000, eval_samples=256)
    c.train.log_every = 50
    c.train.ckpt_every = 500
  if "smoke" in variant:
    c.data.image_size = 32  # the level worlds draw 32 px and up
    c.fm.widths = (8, 16)
    c.fm.attention = False
    c.fm.sample_steps = 2
    c.fm.likelihood_steps = 2
    config_utils.smoke(c)
    c.data.image_size = 32
  return c
