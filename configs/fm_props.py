r"""Flow matching on the built-in ``props`` world, conditioned on the kind of item (14 kinds).

RGB and 5 one-hot part channels (background, body, handle, head, trim); the
kind (chair, table, bed, lamp, shelf, sword, axe, hammer, bow, shield,
potion, key, chest, coin) is the scene class the model is conditioned on
(``sample.py --cond=sword``). The props rules (one piece, inside the frame,
parts attached, body symmetric) judge the samples, and
``genenv_jax.scenes.props.KindClassifier`` (nearest centroid of real props'
part layouts) checks that the asked kind is what was drawn.

Commands:
  python train.py --config=configs/fm_props.py:smoke --workdir=runs/fm_props_smoke
  python train.py --config=configs/fm_props.py:cpu --workdir=runs/fm_props_cpu
  python tools/reproduce.py configs/fm_props.py:cpu   # writes results/fm_props_cpu.json
"""

from configs import fm_city


def get_config(arg=None):
  c = fm_city.get_config(arg)
  c.data.world = "props"
  c.data.channels = ("rgb", "labels")  # sprites have no height map
  c.data.conditional = True
  if c.data.image_size < 32:
    c.data.image_size = 32  # props are drawn at 32 px and up (:smoke)
  return c
