r"""Where a train step's time goes: per-op timings from a JAX profiler trace, grouped.

  python benchmarks/profile_step.py --config=configs/gan_city.py:cpu [--steps=10]

Traces ``--steps`` steps of the compiled step on one device (with XLA:CPU's
per-op trace events on), maps each executed op back to its HLO instruction
and groups the time two ways:

* by kind: convolutions (the library kernels XLA calls), dense layers,
  layout changes (transposes and copies, including the fusions that feed a
  weight-gradient convolution), other element-wise fusions;
* by phase, from the JAX name stack in the op's metadata: forward, backward
  and double backward (R1) of each network (``Generator``,
  ``Discriminator``, ``Encoder``, ...); ops XLA left without a source name
  (the weight-gradient convolutions and their layout changes) and the
  optimiser, EMA and losses form their own rows.

``--ops=N`` also lists the N slowest ops (with their JAX source names, or the
transpose's output shape and permutation for the layout changes XLA leaves
unnamed) and the N slowest convolutions with their operand shapes and
achieved GFLOP/s.

It also prints how busy each worker thread was: XLA:CPU runs independent
ops of the step concurrently, one op per thread, so idle time is what the
step's dependency chain leaves on the table.
"""

import argparse
import collections
import glob
import gzip
import json
import math
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_hlo(text: str):
  """Instruction name -> (opcode, op_name metadata, called computation, line); computation -> lines."""
  comps, cur = {}, None
  for line in text.splitlines():
    m = re.match(r"^(?:ENTRY )?%(\S+) .*\{$", line)
    if m:
      cur = m.group(1)
      comps[cur] = []
    elif cur:
      comps[cur].append(line)
  inst = {}
  for line in text.splitlines():
    m = re.match(r"^\s+(?:ROOT )?%(\S+) = \S+ (\S+?)\(", line)
    if m:
      on = re.search(r'op_name="([^"]*)"', line)
      calls = re.search(r"calls=%([^,\s]+)", line)
      inst[m.group(1)] = (m.group(2), on.group(1) if on else "", calls.group(1) if calls else None, line)
  return inst, comps


def kind_of(inst, comps, name: str) -> str:
  op, _, calls, _ = inst[name]
  if op == "fusion":
    body = "\n".join(comps.get(calls, []))
    if " convolution(" in body:
      return "convolution"
    if " dot(" in body:
      return "dense (dot)"
    if " transpose(" in body or " copy(" in body:
      return "layout change (+element-wise)"
    if " reduce(" in body:
      return "reduction"
    return "element-wise"
  if op == "convolution":
    return "convolution"
  if op == "dot":
    return "dense (dot)"
  if op in ("transpose", "copy"):
    return "layout change (+element-wise)"
  return op


def transpose_of(inst, comps, name: str) -> str:
  """'transpose f32[..] dimensions={..}' of a layout change XLA left without a source name, else ''."""
  op, _, calls, line = inst[name]
  for ln in comps.get(calls, []) if op == "fusion" else [line]:
    m = re.search(r"= (\w+\[[\d,]*\])\S* transpose\(.*?(dimensions=\{[\d,]*\})", ln)
    if m:
      return f"transpose {m.group(1)} {m.group(2)}"
  return ""


def conv_summary(inst, comps, shapes, name: str):
  """(description, FLOPs) of the convolution an op runs, or None: shapes and dim labels from the HLO."""
  op, _, calls, line = inst[name]
  for ln in comps.get(calls, []) if op == "fusion" else [line]:
    m = re.search(r"%(\S+) = \S+ convolution\(%([^,\s]+), %([^)\s]+)\).*dim_labels=(\w+)_(\w+)->(\w+)", ln)
    if not m:
      continue
    out, lhs, rhs = (shapes.get(m.group(i), []) for i in (1, 2, 3))
    kernel = m.group(5)
    spatial = [rhs[i] for i, c in enumerate(kernel) if c.isdigit()]
    g = re.search(r"feature_group_count=(\d+)", ln)
    flops = 2.0 * math.prod(out) * math.prod(spatial) * rhs[kernel.index("i")] / (int(g.group(1)) if g else 1)
    return f"{lhs} * {rhs} -> {out} ({m.group(4)}_{kernel}->{m.group(6)})", flops
  return None


def phase_of(op_name: str) -> str:
  s = op_name.split("/", 1)[-1]
  # The outermost Flax module: ``Discriminator_0/...`` or a method scope ``Glow.log_prob/...``.
  m = re.search(r"(?:^|[/(])([A-Z][A-Za-z0-9]+?)(?:_\d+)?(?:[/).]|$)", s)
  if not m:
    if re.search(r"threefry|_normal|_uniform|random", s):
      return "random numbers"
    if "is_finite" in s or "reduce_and" in s:
      return "finite check"
    return "unnamed by XLA (weight gradients)" if not s else "optimiser, EMA, losses"
  net = m.group(1)
  pre = s[: m.start(1)]
  nested = pre.count("jvp(") >= 2 or "transpose(jvp(transpose" in pre
  if nested:
    return f"{net} double backward (R1)"
  return f"{net} {'backward' if 'transpose(' in pre else 'forward'}"


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="configs/gan_city.py:cpu")
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--top", type=int, default=12, help="rows of the phase x kind table")
  p.add_argument("--ops", type=int, default=0, help="also list the N slowest ops and convolutions")
  p.add_argument("overrides", nargs="*", help="config overrides like model.chunks=2")
  a = p.parse_args()
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_enable_xprof_traceme" not in flags:  # per-op trace events; must be set before JAX starts
    os.environ["XLA_FLAGS"] = flags + " --xla_force_host_platform_device_count=1 --xla_cpu_enable_xprof_traceme=true"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.execv(sys.executable, [sys.executable, *sys.argv])
  sys.path.insert(0, ROOT)
  import jax

  from genenv_jax import training
  from genenv_jax.config_utils import load_config

  su = training.Setup(load_config(a.config, a.overrides))
  from genenv_jax import cpu_kernels

  if cpu_kernels.resolve(su.config.train.get("cpu_convolutions", "xla")) == "eigen":
    print(
      "note: with train.cpu_convolutions='eigen' the convolutions run in Eigen's thread pool, which leaves no "
      "per-op trace events: the tables below miss most of their time (compare the untraced ms/step)"
    )
  state = su.init_state()
  batch = su.loader.global_batch_at(0)
  hlo = su.step_fn.lower(state, batch).compile().as_text()
  inst, comps = parse_hlo(hlo)
  shapes = {  # every instruction's (array) shape, by name
    m.group(1): [int(v) for v in m.group(2).split(",") if v] for m in re.finditer(r"%(\S+) = \w+\[([\d,]*)\]", hlo)
  }
  for _ in range(3):
    state, m = su.step_fn(state, batch)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(a.steps):
    state, m = su.step_fn(state, batch)
  jax.block_until_ready(m)
  untraced = (time.perf_counter() - t) / a.steps * 1e3
  out = tempfile.mkdtemp(prefix="genenv_profile_")
  with jax.profiler.trace(out, create_perfetto_trace=True):
    t = time.perf_counter()
    for _ in range(a.steps):
      state, m = su.step_fn(state, batch)
    jax.block_until_ready(m)
    traced = (time.perf_counter() - t) / a.steps * 1e3
  events = json.load(gzip.open(glob.glob(f"{out}/**/perfetto_trace.json.gz", recursive=True)[0]))["traceEvents"]
  by_kind, by_phase, by_both = collections.Counter(), collections.Counter(), collections.Counter()
  busy, per_op = collections.Counter(), collections.Counter()
  for e in events:
    if e.get("ph") != "X" or e["name"] not in inst:
      continue
    ms = e.get("dur", 0) / 1e3 / a.steps
    per_op[e["name"]] += ms
    k, ph = kind_of(inst, comps, e["name"]), phase_of(inst[e["name"]][1])
    by_kind[k] += ms
    by_phase[ph] += ms
    by_both[(ph, k)] += ms
    busy[e.get("tid")] += ms
  total = sum(by_kind.values())
  name = " ".join([a.config, *a.overrides])
  print(f"{name}: {untraced:.1f} ms/step untraced, {traced:.1f} traced; ops: {total:.1f} ms of work per step")
  print("worker threads busy: " + ", ".join(f"{v / traced:.0%}" for _, v in busy.most_common(4)))
  for title, table in (("by kind", by_kind), ("by phase", by_phase)):
    print(f"\n{title}:")
    for k, v in table.most_common():
      print(f"  {k:<58} {v:7.1f} ms {v / total:6.1%}")
  print("\nphase x kind:")
  for (ph, k), v in by_both.most_common(a.top):
    print(f"  {ph + ' / ' + k:<58} {v:7.1f} ms {v / total:6.1%}")
  if a.ops:
    print(f"\nslowest {a.ops} ops (ms/step, kind, source op name):")
    for n, v in per_op.most_common(a.ops):
      print(f"  {v:6.2f} ms  {kind_of(inst, comps, n)[:14]:<14} {inst[n][1][-110:] or transpose_of(inst, comps, n)}")
    convs = [(v, n, conv_summary(inst, comps, shapes, n)) for n, v in per_op.items()]
    convs = sorted((c for c in convs if c[2]), reverse=True)[: a.ops]
    print(f"\nslowest {len(convs)} convolutions (ms/step, GFLOP/s, phase, lhs * rhs -> out):")
    for v, n, (desc, flops) in convs:
      print(f"  {v:6.2f} ms {flops / v / 1e6:6.1f}  {phase_of(inst[n][1])[:36]:<36} {desc}")


if __name__ == "__main__":
  main()
