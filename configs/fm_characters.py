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
--name=fm_characters_cpu`` (the ``:cpu`` U-Net, 4000 steps of batch 32,
~2.5 steps/s; ``eval.py`` on 1000 samples, midpoint rule, 16 steps):
validity 0.732 (untrained 0.000, real 1.000); the rule that fails most is
symmetric body (0.833); statistics distance 0.230 (6.184 / 0.067). Every
sample is of the kind its class asks for (``tools/class_recognition.py``:
1.000, 40 per class). The model's own RGB is speckled noise: FD 145.39
(real 0.08 / untrained 155.87), KID 8.561, precision and recall 0.000, 99%
"noise". The same samples with their RGB drawn by the world from their part
labels (``eval.py --render=world``): FD 0.67, KID 0.022, precision 0.722,
recall 0.830, C2ST pixels 0.83 (real 0.52). At the 2000-step ``:cpu`` budget
version 2 scored validity 0.003 and FD 150.54; version 1 (people only, 7
part classes, unconditional) had scored validity 0.870 and FD 42.94 there.
All numbers: ``results/fm_characters_cpu.json`` (``render_world`` and
``class_recognition`` inside); docs/levels-and-props.md.
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "characters"
  c.data.channels = ("rgb", "labels")  # sprites have no height map
  c.data.conditional = True  # sample.py --cond=robot (people: plain, hat, staff; animal_quadruped, animal_bird)
  return c
