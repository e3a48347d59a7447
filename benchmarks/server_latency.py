r"""The world server against rendering directly in Python, measured side by side in one run.

  python benchmarks/server_latency.py --world=city_regions
  python benchmarks/server_latency.py --workdir=runs/fm_city_regions_cpu --sizes=256 --requests=4
  python benchmarks/server_latency.py --model=fm_city_regions --sizes=256 --requests=2 --clients= --edits=0
  python benchmarks/server_latency.py --world=city_regions --pan_minutes=10   # server RSS after panning

Starts ``serve.py`` as a subprocess on 127.0.0.1 and prints:
  * region latency p50/p95 at each size, over HTTP (PNG), beside the same
    regions drawn and PNG-encoded in this process: each request is at fresh
    random coordinates, asked of both sides (alternating which goes first),
    so neither side hits a cache and both draw the same chunks; ``ratio`` =
    server p50 / direct p50, ``pair_ratio`` the median of server/direct over
    the pairs (for a model the chunks a region crosses decide its time, and
    the pairs cancel that out). ``--requests`` is a count per size, or one
    count for each size (``--sizes=256,1024 --requests=6,2``);
  * tiles/s and per-tile p50/p95 with 1, 4 and 16 concurrent clients (each a
    bounded loop over fresh random tiles; refused (503) and failed counted);
  * edit latency for a 64x64 disc (where the source is editable), painted
    inside the last region the server drew (a user paints on the view they
    see, so a model's chunks under it are drawn already);
  * with ``--pan_minutes``: the server's resident memory after that long of
    random panning by 4 clients.
Every loop stops by itself. ``--json=FILE`` writes the figures.
"""

import argparse
import concurrent.futures as cf
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_server(args, port: int, edits: str):
  kind = "world" if args.world else ("model" if args.model else "workdir")
  src = [f"--{kind}", getattr(args, kind)]
  cmd = [sys.executable, os.path.join(ROOT, "serve.py"), *src, "--port", str(port), "--edits", edits]
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  import httpx

  t0 = time.time()
  while time.time() - t0 < 300:
    try:
      if httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=2).status_code == 200:
        return proc
    except httpx.HTTPError:
      time.sleep(0.3)
    if proc.poll() is not None:
      raise RuntimeError(f"serve.py exited: {proc.stderr.read()[-2000:]}")
  proc.kill()
  raise RuntimeError("serve.py did not answer within 300 s")


def rss_mb(pid: int) -> float:
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024.0
  return float("nan")


def pct(xs, q):
  return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--world", default="")
  p.add_argument("--workdir", default="")
  p.add_argument("--model", default="", help="a shipped model (python -m genenv_jax.models)")
  p.add_argument("--sizes", default="256,1024")
  p.add_argument("--requests", default="12", help="regions per size and side: one count, or one per size")
  p.add_argument("--tiles", type=int, default=24, help="tiles per client in the concurrency rounds")
  p.add_argument("--clients", default="1,4,16", help="concurrency rounds ('' for none)")
  p.add_argument("--edits", type=int, default=-1, help="64x64 edits timed (default max(3, requests/2); 0 for none)")
  p.add_argument("--pan_minutes", type=float, default=0.0)
  p.add_argument("--json", default="")
  args = p.parse_args()
  if sum(map(bool, (args.world, args.workdir, args.model))) != 1:
    sys.exit("give exactly one of --world, --workdir and --model")
  import tempfile

  import httpx

  from genenv_jax.server import app as server_app
  from genenv_jax.server import sources

  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  if args.world:
    direct = sources.WorldSource(args.world)
  elif args.model:
    from genenv_jax import models

    direct = sources.ModelSource(models.load(args.model))
  else:
    from genenv_jax import trained

    direct = sources.ModelSource(trained.load(args.workdir))
  port = free_port()
  edits = tempfile.mkdtemp(prefix="bench_edits_")
  proc = start_server(args, port, edits)
  base = f"http://127.0.0.1:{port}"
  rng = np.random.default_rng(0)
  out = {"source": direct.name.replace(ROOT + os.sep, ""), "cpu_count": os.cpu_count()}
  out["kernels"] = getattr(direct, "kernels", None)
  out["command"] = "python benchmarks/server_latency.py " + " ".join(sys.argv[1:])
  try:
    client = httpx.Client(timeout=7200)  # a model's 1024x1024 region is ~15 min on a 2-core CPU
    # Warm both sides (compiles, imports) on a region neither measures (inside one model chunk).
    client.get(f"{base}/api/region?seed=9&y0=100&x0=100&h=32&w=32").raise_for_status()
    direct.region(9, 100, 100, 32, 32)
    print(f"source: {direct.name}; {os.cpu_count()} cores; server pid {proc.pid}")
    print(f"{'size':>6} {'side':>7} {'p50 s':>8} {'p95 s':>8}  ratio p50")
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(c) for c in args.requests.split(",")]
    if len(counts) == 1:
      counts *= len(sizes)
    if len(counts) != len(sizes):
      sys.exit(f"--requests={args.requests}: give one count, or one for each of --sizes={args.sizes}")
    last = (0, 0, 64)  # the last region the server drew: where the edits below paint
    for size, count in zip(sizes, counts):
      ts = {"server": [], "direct": []}
      chunks = []
      for i in range(count):  # fresh coordinates for each pair; alternate which side goes first
        y, x = (int(v) for v in rng.integers(-(2**20), 2**20, 2) // 256 * 256 + rng.integers(0, 255, 2))
        if isinstance(direct, sources.ModelSource):
          chunks.append(len(direct._keys(y, x, size, size)))
        for side in ("direct", "server") if i % 2 else ("server", "direct"):
          t0 = time.perf_counter()
          if side == "server":
            client.get(f"{base}/api/region?seed=1&y0={y}&x0={x}&h={size}&w={size}").raise_for_status()
          else:
            server_app._png(direct.region(1, y, x, size, size).rgb)
          ts[side].append(time.perf_counter() - t0)
        last = (y, x, size)
        print(f"  {size} #{i}: direct {ts['direct'][-1]:.2f} s, server {ts['server'][-1]:.2f} s", flush=True)
      r = pct(ts["server"], 50) / pct(ts["direct"], 50)
      pair = float(np.median(np.array(ts["server"]) / np.array(ts["direct"])))
      for side in ("direct", "server"):
        print(
          f"{size:>6} {side:>7} {pct(ts[side], 50):8.3f} {pct(ts[side], 95):8.3f}"
          + (f"  {r:.2f} (pairs: {pair:.2f})" if side == "server" else "")
        )  # noqa: E501
      out[f"region_{size}"] = {
        "direct_p50_s": pct(ts["direct"], 50), "direct_p95_s": pct(ts["direct"], 95),
        "server_p50_s": pct(ts["server"], 50), "server_p95_s": pct(ts["server"], 95), "ratio_p50": r,
        "pair_ratio_median": pair, "requests": count, "direct_s": ts["direct"], "server_s": ts["server"],
      }  # fmt: skip
      if chunks:
        out[f"region_{size}"]["chunks"] = chunks
      save(args.json, out)  # after each size: a later size that fails keeps the earlier ones

    print(f"\n{'clients':>7} {'tiles/s':>8} {'p50 s':>8} {'p95 s':>8} {'503':>5} {'failed':>6}")
    for n in [int(c) for c in args.clients.split(",") if c.strip()]:
      lat, refused, failed = [], 0, 0

      def one_client(k):
        nonlocal refused, failed
        r2 = np.random.default_rng(1000 + 100 * n + k)
        with httpx.Client(timeout=600) as c:
          for _ in range(args.tiles):
            tx, ty = (int(v) for v in r2.integers(-4000, 4000, 2))
            t0 = time.perf_counter()
            resp = c.get(f"{base}/tiles/rgb/0/{tx}/{ty}.png?seed=2")
            dt = time.perf_counter() - t0
            if resp.status_code == 200:
              lat.append(dt)
            elif resp.status_code == 503:
              refused += 1
            else:
              failed += 1

      t0 = time.perf_counter()
      with cf.ThreadPoolExecutor(n) as ex:
        list(ex.map(one_client, range(n)))
      wall = time.perf_counter() - t0
      print(f"{n:>7} {len(lat) / wall:8.2f} {pct(lat, 50):8.3f} {pct(lat, 95):8.3f} {refused:>5} {failed:>6}")
      out[f"tiles_{n}_clients"] = {"tiles_per_s": len(lat) / wall, "p50_s": pct(lat, 50), "p95_s": pct(lat, 95),
                                   "refused_503": refused, "failed": failed}  # fmt: skip

    info = client.get(f"{base}/api/info").json()
    n_edits = max(3, max(counts) // 2) if args.edits < 0 else args.edits
    if info["editable"] and n_edits > 0:
      import base64
      import io

      from PIL import Image

      yy, xx = np.mgrid[:64, :64]
      mask = ((((yy - 32) ** 2 + (xx - 32) ** 2) < 30**2) * 255).astype(np.uint8)
      buf = io.BytesIO()
      Image.fromarray(mask).save(buf, format="PNG")
      m64 = base64.b64encode(buf.getvalue()).decode()
      water = info["class_names"].index("water") if "water" in info["class_names"] else 0
      ts = []
      for i in range(n_edits + 1):  # the first compiles the edit and is not counted
        y, x = (last[k] + int(rng.integers(0, max(1, last[2] - 64 + 1))) for k in range(2))
        body = {"seed": 1, "y0": y, "x0": x, "h": 64, "w": 64, "mask": m64, "labels": water}
        t0 = time.perf_counter()
        client.post(f"{base}/api/edit", json=body).raise_for_status()
        if i:
          ts.append(time.perf_counter() - t0)
      print(f"\nedit 64x64 disc: p50 {pct(ts, 50):.3f} s, p95 {pct(ts, 95):.3f} s ({len(ts)} edits)")
      out["edit_64"] = {"p50_s": pct(ts, 50), "p95_s": pct(ts, 95), "n": len(ts)}

    if args.pan_minutes > 0:
      stop = time.time() + 60 * args.pan_minutes
      count = [0]

      def panner(k):
        r2 = np.random.default_rng(5000 + k)
        x, y = 0, 0
        with httpx.Client(timeout=600) as c:
          while time.time() < stop:
            x += int(r2.integers(-3, 4))
            y += int(r2.integers(-3, 4))
            for dx in range(3):
              c.get(f"{base}/tiles/rgb/0/{x + dx}/{y}.png?seed=3")
              count[0] += 1

      with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(panner, range(4)))
      mb = rss_mb(proc.pid)
      print(
        f"\nafter {args.pan_minutes:g} min of random panning by 4 clients ({count[0]} tiles): server RSS {mb:.0f} MB"
      )
      out["pan"] = {"minutes": args.pan_minutes, "tiles": count[0], "server_rss_mb": mb}
    out["server_rss_mb_end"] = rss_mb(proc.pid)
  finally:
    proc.terminate()
    proc.wait(30)
  save(args.json, out)


def save(path: str, out: dict) -> None:
  if path:
    with open(path, "w") as f:
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
