r"""GAN on your own images: a folder of PNG/JPEG files (subfolders are classes).

  python train.py --config=configs/gan_folder.py:cpu --config.data.path=~/my_images --workdir=runs/mine
  python eval.py --workdir=runs/mine --num_samples=1000
  python sample.py --workdir=runs/mine --output=out/mine --num_samples=10000

``data.path`` is required. Images of any size and mode are converted to RGB,
resized on the shorter side and centre-cropped to ``data.image_size``. By
default 10% of the images (chosen by a hash of each file's path, so adding
files never moves another between the splits) are held out: eval.py's
"real" column and its two-sample test use them, never the training images.
``--config.data.test_path=DIR`` gives a separate held-out folder instead.
With ``--config.data.conditional=True`` each subfolder is a class
(``sample.py --cond=NAME``).

The city GAN's architecture with RGB only, DiffAugment on (small datasets,
StyleGAN2-ADA's lesson) and bilinear upsampling (no 8-px stripe). Read the
classifier two-sample test (``c2st/pixels``: 0.5 = indistinguishable from
the held-out images) first on photographs: the scene feature network was
trained on the built-in worlds, and eval.py says when your images are
outside its domain.

Measured with ``:cpu`` and 1500 steps on a 2-core CPU, conditional, on a
folder of 6000 forest PNGs in three class subfolders written by
``tools/make_image_folder.py`` (so it runs offline), against the 595
held-out images, two runs: FD 18.86 and 9.94 (real 0.04), precision 0.625
and 0.864, recall 0.000 and 0.005, C2ST pixels 1.00 (real 0.49); in a
feature space trained on the folder itself (eval.py's ``*_own``, run 2) FD
1.53, precision 0.997, recall 0.001 (real 0.01 / 0.923 / 0.956). The GAN
collapses to about one scene per class at this budget, where ``fm_folder``
covers the folder (own-space recall 0.876; docs/own-data.md). Ten times
the R1 penalty (``--config.gan.r1_gamma=10``, one run) gave FD 5.60,
recall 0.244 (own space 0.62 / 0.969 / 0.136) and varied scenes per class:
a lead for small folders, not yet the default (one GAN run decides no
default). ``results/gan_folder_forest_r1x10_cpu.json``.
``results/gan_folder_forest_cpu.json`` has every number and its command.
"""

from configs import gan_city
from genenv_jax import config_utils


def get_config(arg=None):
  variant = config_utils.parse_arg(arg)
  c = gan_city.get_config(",".join(sorted(variant)) or None)
  c.data.source = "folder"
  c.data.world = ""
  c.data.channels = ("rgb",)
  c.data.path = ""  # required: --config.data.path=DIR
  c.gan.augment = True
  c.model.upsample = "bilinear"  # no 8-px stripe in large scenes of photographs
  return c
