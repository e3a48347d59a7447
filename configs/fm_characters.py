r"""Flow matching on the built-in ``characters`` world: sprites with part labels.

Commands:
  python train.py --config=configs/fm_characters.py:smoke --workdir=runs/fm_characters_smoke
  python train.py --config=configs/fm_characters.py:cpu --workdir=runs/fm_characters_cpu
  python train.py --config=configs/fm_characters.py --workdir=runs/fm_characters

Measured with ``:cpu`` on a 2-core CPU (the ``fm_city`` settings: 2000 steps of
batch 32), ``python eval.py --workdir=runs/fm_characters_cpu --num_samples=1000``
(midpoint rule, 16 steps): validity 0.870 (untrained 0.000, real 1.000;
``vae_characters`` 0.003 with its Gaussian prior, 0.965 with the learned one
in 5000 steps), statistics distance 0.315 (14.693 / 0.058), FD 42.94 (real
0.05 / untrained 168.40), KID 1.853, precision 0.021, recall 0.125 (the VAE's
0 and 0), C2ST on features 1.00 (real 0.49). The sprites have their parts but
carry colour speckle (73% "quantize"). All numbers: ``python tools/reproduce.py
configs/fm_characters.py:cpu`` writes ``results/fm_characters_cpu.json``.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "characters"
  c.data.channels = ("rgb", "labels")  # sprites have no height map
  c.data.conditional = True  # sample.py --cond=robot (people: plain, hat, staff; animal_quadruped, animal_bird)
  return c
