r"""The training loader's host work alone: batches a second on one thread and on a pool of threads, side by side.

  python benchmarks/loader_throughput.py --config=configs/vae_terrain.py --threads=4 [--batches=60] [--rounds=2]

What ``data.pipeline.Loader`` does for each step on its one background
thread: ``source.get`` (the TFDS ``array_record`` read and decode) of a
batch of random rows, then the layout's encoding into the model tensor.
Interleaved rounds of one thread and of ``--threads`` threads; prints
batches/s of each, the ratio, and the read alone. Compare with the train
loop's steps/s (``train.py``'s progress bar): where they are equal, the loop
waits on its input. The data is ``--num_train`` scenes of the config's
world, drawn on first use (docs/benchmarks.md, "On a GPU").
"""

import argparse
import concurrent.futures as cf
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", default="configs/vae_terrain.py")
  p.add_argument("--threads", type=int, default=4)
  p.add_argument("--batches", type=int, default=60)
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--num_train", type=int, default=4000)
  a = p.parse_args()
  from genenv_jax import config_utils, layout
  from genenv_jax.data import sources
  from genenv_jax.scenes import get_world

  c = config_utils.load_config(os.path.join(ROOT, a.config))
  c.data.num_train, c.data.num_test = a.num_train, 200
  src = sources.make_source(c.data, "train")
  lay = layout.Layout.for_data(c.data.channels, get_world(c.data.world))
  n = c.train.batch_size
  rng = np.random.default_rng(0)

  def batch(_):
    return lay.encode(src.get(rng.integers(0, len(src), n)))

  batch(0)
  rates = {1: [], a.threads: []}
  for _ in range(a.rounds):
    for k in rates:
      t = time.perf_counter()
      if k == 1:
        for i in range(a.batches):
          batch(i)
      else:
        with cf.ThreadPoolExecutor(k) as ex:
          list(ex.map(batch, range(a.batches)))
      rates[k].append(a.batches / (time.perf_counter() - t))
      print(f"{k} thread(s): {rates[k][-1]:.1f} batches/s of {n}", flush=True)
  t = time.perf_counter()
  for _ in range(a.batches // 2):
    src.get(rng.integers(0, len(src), n))
  read_ms = (time.perf_counter() - t) / (a.batches // 2) * 1e3
  one, many = np.median(rates[1]), np.median(rates[a.threads])
  print(
    f"median: 1 thread {one:.1f} batches/s ({1e3 / one:.1f} ms), {a.threads} threads {many:.1f} ({many / one:.2f}x); "
    f"the read alone {read_ms:.1f} ms"
  )


if __name__ == "__main__":
  main()
