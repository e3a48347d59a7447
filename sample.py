r"""Synthesizes a scene dataset (or one large scene) from a trained workdir.

  python sample.py --workdir=runs/city --output=out/city_synth --num_samples=1000000
  python sample.py --workdir=runs/city --output=out/city_big --scene_size=4096x4096

The dataset reads back with no TensorFlow:
  tfds.builder_from_directory('out/city_synth').as_data_source('train')
Rerunning the same command resumes; a finished output is left as it is.
"""

import sys

from absl import app, flags

from genenv_jax import cli, synthesis, tiling, trained

_WORKDIR = flags.DEFINE_string("workdir", None, "A train.py workdir.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output folder.", required=True)
_NUM = flags.DEFINE_integer("num_samples", 1000, "Samples to write.")
_SEED = flags.DEFINE_integer("seed", 0, "Sample i uses fold_in(PRNGKey(seed), i).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Samples per device call (all local devices).")
_SHARD = flags.DEFINE_integer("shard_size", 10_000, "Samples per output shard.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest readable).")
_TEMP = flags.DEFINE_float("temperature", 1.0, "Latent scale (truncation for GANs, temperature for flows).")
_COND = flags.DEFINE_integer("cond", -1, "Scene class for conditional models (-1: drawn per sample).")
_CHUNK = flags.DEFINE_integer("chunk", 8, "Per-device micro-batch; fixes the computation so bytes never vary.")
_SCENE = flags.DEFINE_string("scene_size", "", "HxW in pixels: write one large tiled scene instead of a dataset.")
_TILE = flags.DEFINE_integer("tile_cells", 32, "Large scenes: tile side in latent cells.")


def main(argv):
  del argv
  cli.start()
  try:
    model = trained.load(_WORKDIR.value, _STEP.value)
    if _SCENE.value:
      h, w = tiling.parse_size(_SCENE.value)
      tiling.write_large_scene(model, _OUTPUT.value, h, w, _SEED.value, _TILE.value, _TEMP.value, _COND.value)
    else:
      synthesis.run(
        model,
        _OUTPUT.value,
        _NUM.value,
        seed=_SEED.value,
        batch_size=_BATCH.value,
        shard_size=_SHARD.value,
        temperature=_TEMP.value,
        cond=_COND.value,
        chunk=_CHUNK.value,
      )
  except (ValueError, OSError, RuntimeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  app.run(main)
