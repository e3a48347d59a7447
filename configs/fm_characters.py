r"""Flow matching on the built-in ``characters`` world: sprites with part labels.

Commands:
  python train.py --config=configs/fm_characters.py:smoke --workdir=runs/fm_characters_smoke
  python train.py --config=configs/fm_characters.py:cpu --workdir=runs/fm_characters_cpu
  python train.py --config=configs/fm_characters.py --workdir=runs/fm_characters

Conditional on the scene class: people (``plain``, ``hat``, ``staff``),
``animal_quadruped``, ``animal_bird``, ``robot`` (``sample.py --cond=robot``);
RGB and 14 one-hot part channels (characters version 2).

Measured on a 2-core CPU, one run, ``python tools/reproduce.py
configs/fm_characters.py:cpu --override=train.num_steps=4000
--name=fm_characters_cpu`` (the ``:cpu`` U-Net widened at full resolution,
features (32, 64, 64) as in ``fm_interiors``; 4000 steps of batch 32, 1.8 h
with other work beside it; ``eval.py`` on 1000 samples, midpoint rule, 16
steps): validity 0.827 (untrained 0.000, real 1.000); the rule that fails
most is symmetric body (0.864); statistics distance 0.084 (6.184 / 0.067).
The model's own RGB now draws the figures: FD 3.23 (real 0.08 / untrained
155.87), KID 0.089, precision 0.347, recall 0.659, C2ST pixels 0.994 (real
0.52), 0% "noise" (42% "clean", real 50%). Every sample is of the kind its
class asks for (``tools/class_recognition.py``: 1.000, 40 per class;
validity of those conditioned samples 0.846). The same samples with their
RGB drawn by the world from their part labels (``eval.py --render=world``,
key ``render_world``): FD 0.257, KID 0.005, precision 0.839, recall 0.868,
C2ST pixels 0.745.

The previous row, ``fm_city``'s 16-feature U-Net at the same 4000 steps:
validity 0.732, statistics distance 0.230, and the model's RGB speckled
noise (FD 145.39, KID 8.561, precision and recall 0.000, 99% "noise"); its
part labels drawn by the world (``eval.py --render=world``) gave FD 0.67. 17
channels (14 one-hot) through 16 features at full resolution was the
bottleneck, as for interiors. At the 2000-step ``:cpu`` budget version 2
had scored validity 0.003 and FD 150.54; version 1 (people only, 7 part
classes, unconditional) 0.870 and FD 42.94. All numbers:
``results/fm_characters_cpu.json`` (``class_recognition`` and ``render_world`` inside);
docs/levels-and-props.md.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "characters"
  c.data.channels = ("rgb", "labels")  # sprites have no height map
  c.data.conditional = True  # sample.py --cond=robot (people: plain, hat, staff; animal_quadruped, animal_bird)
  if "cpu" in (arg or ""):
    # 17 channels (14 one-hot) through fm_city's 16 features at full resolution was the bottleneck, as for
    # interiors: at step 4000, 32 features gave FD 3.23 against 145.39 and validity 0.827 against 0.732.
    c.fm.widths = (32, 64, 64)
  return c
