r"""Flow matching on your own images: a folder of PNG/JPEG files (subfolders are classes).

  python train.py --config=configs/fm_folder.py:cpu --config.data.path=~/my_images --workdir=runs/mine
  python eval.py --workdir=runs/mine --num_samples=1000
  python sample.py --workdir=runs/mine --output=out/mine --num_samples=10000

The first own-images command: the family with the best validity per CPU
minute on the built-in worlds, and one that does not collapse on a small
folder the way a GAN can (a flow-matching loss has no adversary: every
training image pulls on the field). ``data.path`` is required; images are
read, split and conditioned exactly as ``gan_folder`` reads them (RGB,
shorter side resized, centre crop; 10% held out by a hash of each path;
``--config.data.conditional=True`` makes each subfolder a class, ``sample.py
--cond=NAME``). Unreadable, blank (one colour) and fully transparent files
are skipped and named.

The ``:cpu`` variant is ``fm_city``'s (the same U-Net on RGB only, 2000
steps of batch 32). Measured: ``results/fm_folder_forest_cpu.json`` and
docs/own-data.md (the 3-class forest folder that ``gan_folder`` collapsed
on).
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.source = "folder"
  c.data.world = ""
  c.data.channels = ("rgb",)
  c.data.path = ""  # required: --config.data.path=DIR
  return c
