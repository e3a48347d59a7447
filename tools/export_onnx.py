r"""Writes a trained model as ONNX for engines (Unity Inference Engine / Sentis, Unreal NNE, ONNX Runtime).

  python tools/export_onnx.py --workdir=runs/fm_city_cpu --output=out/fm_city_onnx
  python tools/export_onnx.py --model=fm_dungeon --output=out/fm_dungeon_onnx --opset=15

writes ``OUTPUT/model.onnx`` (the flow-matching velocity field, or the GAN
generator, parameters baked in; a two-level model: ``coarse.onnx`` and
``fine.onnx``) and ``OUTPUT/model.json`` (input/output
shapes, the channel layout, and for flow matching the sampler loop to run
around it). See ``genenv_jax.exports.onnx_model`` and docs/server.md.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere

from genenv_jax import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir.")
_MODEL = flags.DEFINE_string("model", None, "A shipped pretrained model (python -m genenv_jax.models).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable).")
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.", required=True)
_OPSET = flags.DEFINE_integer("opset", 15, "ONNX opset (Unity's Inference Engine imports 7..15).")
_BATCH = flags.DEFINE_integer("batch", 1, "The exported batch size (shapes are static).")
_SOLVER = flags.DEFINE_string("solver", "", "Flow matching: the engine loop's solver: euler, midpoint, heun.")
_STEPS = flags.DEFINE_integer("steps", 0, "Flow matching: the engine loop's steps (default: the config's).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if bool(_WORKDIR.value) == bool(_MODEL.value):
    print("error: give exactly one of --workdir and --model", file=sys.stderr)
    return 1
  cli.start()
  from genenv_jax.exports import onnx_model

  try:
    if _MODEL.value:
      from genenv_jax import models

      model = models.load(_MODEL.value)
    else:
      from genenv_jax import trained

      model = trained.load(_WORKDIR.value, _STEP.value)
    card = onnx_model.export(model, _OUTPUT.value, _BATCH.value, _OPSET.value, _SOLVER.value, _STEPS.value)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  size = f"{card['onnx_bytes']:,} bytes"
  if "networks" in card:  # a two-level model: coarse.onnx and fine.onnx
    for name, net in card["networks"].items():
      shapes = ", ".join(f"{i['name']} {i['shape']}" for i in net["inputs"])
      print(f"wrote {_OUTPUT.value}/{net['file']} ({name} level; {shapes})")
    print(f"{card['kind']}, opset {card['opset']}, {size} in all; the loop between them: model.json")
    return 0
  shapes = ", ".join(f"{i['name']} {i['shape']}" for i in card["inputs"])
  print(f"wrote {_OUTPUT.value}/model.onnx ({card['kind']}, opset {card['opset']}, {size}; {shapes})")
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
