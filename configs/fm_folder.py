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

The ``:cpu`` variant is ``fm_city``'s (the same U-Net on RGB only, batch
32). Measured with 1500 steps (``gan_folder``'s budget on the same folder),
conditional, on the 6000 forest PNGs in three class subfolders that
``tools/make_image_folder.py --world=forest --num_images=6000`` writes
offline, against the 595 held-out images (one run, 26 min wall beside the
test suite; ``python eval.py --workdir=runs/fm_folder_forest_cpu
--num_samples=1000``):

  =====================  =========  =======  =====  ===============
  metric                 untrained  trained  real   gan_folder :cpu
  =====================  =========  =======  =====  ===============
  FD                     193.45     0.89     0.04   18.86
  precision              0.000      0.916    0.919  0.625
  recall                 0.000      0.806    0.926  0.000
  C2ST pixels (0.5 best) 1.000      0.957    0.488  1.00
  test bits/dim          -          2.437    -      -
  =====================  =========  =======  =====  ===============

Where the GAN collapsed to a few scenes per class (recall 0.000), flow
matching covers the folder (recall 0.806) and beats the independent
per-pixel baseline's 5.794 bits/dim. Read FD/precision/recall with care:
the feature network calls only 19% of these real images clean (they are
out of its domain, eval.py warns), and a pixel classifier still tells the
samples from real (C2ST 0.957; 97% of samples look "blurred" to the
feature network, 81% of real ones do too). All numbers:
``results/fm_folder_forest_cpu.json``.

Gray images (``--config.data.channels="('gray',)"``: one channel, counted
once): on 3000 terrain heightmaps as gray PNGs, unconditional, 2000 steps,
one run, 2.934 test bits/dim against the gray per-pixel baseline's 7.853,
C2ST pixels 0.651 (real 0.495, untrained 1.000); the feature network is out
of its domain there (0% clean). ``results/fm_folder_gray_cpu.json``.

One elevation model (``--config.data.path=dem.tif
--config.data.channels="('height',)"``: windows cut from the file, held out
by region, 16-bit metres to the engine export): on matplotlib's Jacksboro
fault DEM (``python tools/make_dem.py --output=runs/jacksboro.tif``, 92 m per
pixel), ``--config.data.stride=4 --config.data.test_fraction=0.25``, 2000
steps (17 min), one run: the height statistics against the held-out
region's heights (spectrum distance 0.28, slope difference 0.73, mean-slope
difference 0.010, drains-to-border 0.072, longest flow path 0.071) all lie
less than halfway from the real spread (the training region's: 0.11, 0.49,
0.005, 0.092, 0.105) to the untrained model's (2.07, 3.94, 0.33, 0.13,
0.33); own-space FD 0.04, precision 0.782, recall 0.883 against the training
region (the held-out region, a lower valley beyond the fault, scores 8.24 /
0.689 / 0.018 there); 2.516 test bits/dim against the per-pixel 8.460.
Its 257-px scenes are dissected hills everywhere, without the fault's
escarpment or the valley floor (docs/own-data.md).
``results/fm_folder_dem_cpu.json``.

Where the shipped feature network is out of its domain, eval.py adds
FD/KID/precision/recall in a space trained on the run's own data (``*_own``;
``genenv_jax/metrics/own_space.py``): on the forest folder above, FD 0.14,
precision 0.941, recall 0.876 (real 0.01 / 0.923 / 0.956, untrained 21.4 /
0 / 0).
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.source = "folder"
  c.data.world = ""
  c.data.channels = ("rgb",)
  c.data.path = ""  # required: --config.data.path=DIR
  return c
