r"""Quality and speed of a flow-matching model against the number of network evaluations (NFE).

For each NFE in --nfe: Euler at NFE 1, the midpoint rule (2 evaluations per
step) at every even NFE, and once the adaptive solver (diffrax Tsit5). Each
row: FD / KID / precision / recall against the world's train split,
validity, and samples/s measured on the same machine in the same run (after
a warm-up call that compiles). Writes a JSON and prints a Markdown table:

  python tools/nfe_table.py --workdir=runs/fm_city_cpu --num_samples=1000 \
      --output=docs/nfe/fm_city_cpu.json
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from genenv_jax import parallel, trained  # noqa: E402
from genenv_jax.data import sources  # noqa: E402
from genenv_jax.evaluation import EVAL_SEED  # noqa: E402
from genenv_jax.families import flow_matching as fm  # noqa: E402
from genenv_jax.metrics import scorer  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A flow-matching run.", required=True)
_NUM = flags.DEFINE_integer("num_samples", 1000, "Scenes per row.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Scenes per sampling call.")
_NFE = flags.DEFINE_list("nfe", ["1", "2", "4", "8", "16", "32", "64"], "Network evaluations per sample.")
_ADAPTIVE = flags.DEFINE_bool("adaptive", True, "Also a row for the adaptive solver (rtol 1e-3).")
_OUT = flags.DEFINE_string("output", "", "Where the JSON goes (default: WORKDIR/eval/nfe_table.json).")


def rows_to_markdown(rows) -> str:
  lines = ["| NFE | solver | steps | FD | KID | precision | recall | validity | samples/s |", "|---" * 9 + "|"]
  for r in rows:
    v = r.get("validity")
    lines.append(
      f"| {r['nfe']} | {r['solver']} | {r['steps']} | {r['fd']:.2f} | {r['kid']:.3f} | {r['precision']:.3f} | "
      f"{r['recall']:.3f} | {'-' if v is None else f'{v:.3f}'} | {r['samples_per_s']:.0f} |"
    )
  return "\n".join(lines)


def main(argv):
  del argv
  model = trained.load(_WORKDIR.value)
  if model.family.canvas is None:
    raise ValueError(f"workdir={_WORKDIR.value!r}: family={model.config.family!r} is not flow matching")
  mesh = parallel.make_mesh(-1)
  repl = parallel.replicated(mesh)
  params = jax.device_put(model.params, repl)
  cfg = model.config
  train_src, test_src = sources.make_source(cfg.data, "train"), sources.make_source(cfg.data, "test")
  fnet = scorer.make_feature_net("default", mesh)
  ev = scorer.SceneEvaluator(model.world, train_src, test_src, model.layout, _NUM.value, fnet)
  settings = []
  for k in (int(v) for v in _NFE.value):
    settings.append(("euler", 1) if k == 1 else ("midpoint", k // 2))
  if _ADAPTIVE.value:
    settings.append(("adaptive", 1))
  key = jax.random.PRNGKey(EVAL_SEED)
  rows = []
  for solver, steps in settings:

    def fn(p, kk, n, solver=solver, steps=steps):
      return model.family.sample(p, kk, n, solver=solver, steps=steps)

    sample = jax.jit(fn, static_argnums=(2,), out_shardings=parallel.batch_sharded(mesh))
    jax.block_until_ready(sample(params, key, _BATCH.value))  # compile
    t0 = time.perf_counter()
    x = scorer.sample_batches(sample, params, key, _NUM.value, _BATCH.value)
    dt = time.perf_counter() - t0
    m = ev.score_decoded(model.layout.decode(x))
    row = {
      "nfe": fm.nfe(solver, steps) if solver != "adaptive" else "adaptive",
      "solver": solver,
      "steps": steps if solver != "adaptive" else "rtol 1e-3",
      "fd": m["fd"],
      "kid": m["kid"],
      "precision": m["precision"],
      "recall": m["recall"],
      "validity": m.get("validity"),
      "samples_per_s": _NUM.value / dt,
    }
    rows.append(row)
    print(json.dumps(row), flush=True)
  out = _OUT.value or os.path.join(model.workdir.eval_dir, "nfe_table.json")
  os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
  with open(out, "w") as f:
    json.dump(
      {
        "workdir": _WORKDIR.value,
        "checkpoint_step": model.step,
        "num_samples": _NUM.value,
        "devices": [str(d.device_kind) for d in mesh.devices.flat],
        "command": "python tools/nfe_table.py " + " ".join(sys.argv[1:]),
        "rows": rows,
      },
      f,
      indent=1,
    )
  print(rows_to_markdown(rows))
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
