r"""VAE on the built-in ``characters`` world: game-character sprites (RGB + part labels).

Commands:
  python train.py --config=configs/vae_characters.py:smoke --workdir=runs/vae_characters_smoke
  python train.py --config=configs/vae_characters.py:cpu --workdir=runs/vae_characters_cpu
  python train.py --config=configs/vae_characters.py --workdir=runs/vae_characters

Every figure below is of version 1 of the world (people only, 7 part
classes); version 2 added animals and robots (14 part classes, 6 scene
classes), and these rows and the shipped ``vae_characters_fmprior`` were not
re-run on it (``fm_characters`` was). ``tools/reproduce.py`` now trains on
version 2.

Measured with ``:cpu`` on a 2-core CPU (5000 steps), ``python eval.py
--workdir=runs/vae_characters_cpu --num_samples=1000``: test ELBO 3.678 and
IW bound 3.669 bits/dim (independent per-pixel baseline 4.633; untrained
7.6). Prior samples are poor: validity 0.003 (real 1.000), statistics
distance 4.445 (untrained 22.088, real 0.058), C2ST on pixels 1.00 (real
0.50: a classifier tells every prior sample from a real sprite).

Feature space (the shipped scene feature network), model (real held-out /
untrained): FD 65.52 (0.05 / 169.26); KID 3.378
(-0.001 / 10.135); precision 0.000 (0.900); recall
0.000 (0.917). Prior samples are blurred (100% "blur").
All numbers: ``python tools/reproduce.py configs/vae_characters.py:cpu`` writes
``results/vae_characters_cpu.json`` (the results table, docs/results.md).

With the learned prior (``--config.vae.prior=flow_matching``: a U-Net velocity
field over the 4x4x16 latent grid trained alongside on posterior samples,
16 midpoint steps to sample; 3.7 steps/s against ~8 without it), 5000 steps:
validity 0.965 (Gaussian prior 0.003), statistics distance 0.328 (4.445), FD
32.09 (65.52; untrained 169.26), KID 1.429 (3.378); the same test ELBO 3.678
and IW bound 3.669 to the last digit (the encoder and decoder train exactly
as before). The samples are whole figures, still blurred (96% "blur"):
precision and recall stay 0. ``python tools/reproduce.py
configs/vae_characters.py:cpu --override=vae.prior=flow_matching
--name=vae_characters_fmprior_cpu`` writes ``results/vae_characters_fmprior_cpu.json``.
"""

from configs import vae_terrain


def get_config(arg=None):
  c = vae_terrain.get_config(arg)
  c.data.world = "characters"
  c.data.channels = ("rgb", "labels")  # sprites have no height map
  return c
