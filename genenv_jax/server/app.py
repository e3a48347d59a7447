"""The world server's HTTP API (Starlette): regions, tiles, edits, samples, exports and the explorer page.

One worker thread does all drawing: requests queue for it (a bounded queue;
a full queue answers 503 at once), and the worker takes every region request
waiting when it starts and draws them together, so a model's chunks for
concurrent clients share device calls. Encoded tiles and regions are cached
by (request, edit-log version). A client that disconnects while queued is
dropped before drawing. Bad requests are a 400 with ``{"error": "...",
"parameter": NAME}``; nothing is stored for a failed edit.
"""

from __future__ import annotations

import asyncio
import io
import os
import queue
import shutil
import tempfile
import threading
import zipfile
from collections import OrderedDict
from concurrent.futures import Future

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from genenv_jax.server import edits as edits_lib
from genenv_jax.server.sources import Layers, Source

STATIC = os.path.join(os.path.dirname(__file__), "static")
LAYERS = ("rgb", "labels", "height")
FORMATS = ("png", "raw16", "npy")
EXPORT_FORMATS = ("unity", "unreal", "gltf", "tiled")
TILE = 256
MAX_EDIT_PIXELS = 512 * 512
MAX_SKETCH_PIXELS = 4096 * 4096  # scene pixels a sketch lays out (at 1/factor: 512 x 512 coarse at factor 8)
MAX_COORD = 2**30


class BadRequest(ValueError):
  def __init__(self, parameter: str, message: str):
    super().__init__(message)
    self.parameter = parameter


class Busy(RuntimeError):
  pass


# --------------------------------------------------------------------------- the worker


class _Job:
  __slots__ = ("kind", "seed", "window", "fn", "future", "gone")

  def __init__(self, kind, seed=0, window=None, fn=None):
    self.kind, self.seed, self.window, self.fn = kind, seed, window, fn
    self.future: Future = Future()
    self.gone = False  # the client left before its turn


class Worker:
  """One thread draws; region jobs waiting together are drawn in one ``region_batch`` per seed."""

  def __init__(self, world: ServedWorld, max_queue: int = 64, max_batch: int = 32):
    self.world, self.q, self.max_batch = world, queue.Queue(max_queue), max_batch
    threading.Thread(target=self._loop, daemon=True, name="genenv-server-worker").start()

  def submit(self, job: _Job) -> _Job:
    try:
      self.q.put_nowait(job)
    except queue.Full:
      raise Busy("the server's queue is full; retry shortly") from None
    return job

  def _loop(self):
    while True:
      jobs = [self.q.get()]
      while len(jobs) < self.max_batch:
        try:
          jobs.append(self.q.get_nowait())
        except queue.Empty:
          break
      jobs = [j for j in jobs if not j.gone and j.future.set_running_or_notify_cancel()]
      regions = [j for j in jobs if j.kind == "region"]
      for seed in sorted({j.seed for j in regions}):
        group = [j for j in regions if j.seed == seed]
        try:
          got = self.world.read_batch(seed, [j.window for j in group])
          for j, g in zip(group, got):
            j.future.set_result(g)
        except BaseException as e:  # noqa: BLE001 - the error goes to the waiting requests
          for j in group:
            j.future.set_exception(e)
      for j in jobs:
        if j.kind != "region":
          try:
            j.future.set_result(j.fn())
          except BaseException as e:  # noqa: BLE001
            j.future.set_exception(e)


# --------------------------------------------------------------------------- the world with its edits


class ServedWorld:
  """A source, its edit log, and a cache of encoded responses."""

  def __init__(self, source: Source, edits_dir: str, max_queue: int = 64):
    self.source = source
    self.log = edits_lib.EditLog(edits_dir)
    self.cache: OrderedDict = OrderedDict()
    self.cache_lock = threading.Lock()
    self.cache_size = 512
    self._patches: dict[str, dict] = {}
    self._sketches: dict[str, np.ndarray] = {}  # id -> decoded class indices
    if source.sketch_info() is not None:
      source.sketches_of = self.sketches
    self.worker = Worker(self, max_queue)

  def sketches(self, seed: int) -> list:
    """The active sketches of ``seed`` for the source: (id, cy0, cx0, classes, strength), coarse pixels."""
    f = self.source.sketch_info()["factor"]
    out = []
    for rec in self.log.sketches(seed):
      idx = self._sketches.get(rec["id"])
      if idx is None:
        idx = edits_lib.decode_png(rec["labels"], "labels", (rec["h"] // f, rec["w"] // f), transparent=255)
        self._sketches[rec["id"]] = idx
      out.append((rec["id"], rec["y0"] // f, rec["x0"] // f, idx, float(rec["strength"])))
    return out

  def sketch(self, rec: dict) -> dict:
    """Runs on the worker: appends the sketch line (the source draws it when its chunks are read)."""
    with self.log.lock:
      rec = dict(rec, id=self.log.new_id())
      self.log.add_sketch(rec)
    return {"id": rec["id"], "seed": rec["seed"], "y0": rec["y0"], "x0": rec["x0"], "h": rec["h"], "w": rec["w"],
            "strength": rec["strength"], "version": self.log.version}  # fmt: skip

  # ---- reading
  def read_batch(self, seed: int, windows, before: str | None = None) -> list[Layers]:
    """The windows with the active edits applied (only those before edit ``before`` in the log, if given)."""
    base = self.source.region_batch(seed, windows)
    out = []
    for (y0, x0, h, w), b in zip(windows, base):
      es = self.log.for_window(seed, y0, x0, h, w)
      if before is not None and before in self.log.active:
        earlier = set(self.log.active[: self.log.active.index(before)])
        es = [e for e in es if e["id"] in earlier]
      out.append(edits_lib.overlay(b, y0, x0, es, [self._patch(e) for e in es]))
    return out

  def read(self, seed, y0, x0, h, w, before: str | None = None) -> Layers:
    return self.read_batch(seed, [(y0, x0, h, w)], before)[0]

  def _patch(self, e: dict) -> dict:
    p = self._patches.get(e["id"])
    if p is None:
      p = self.log.load_patch(e["id"])
      if p is None:  # lost: recompute it from its line (deterministic)
        p = self._compute_patch(e)
      self._patches[e["id"]] = p
    return p

  # ---- editing
  def edit_context(self, h: int, w: int) -> tuple[int, int, int]:
    """(margin, context height, context width) around an h x w edit."""
    src = self.source
    cv = getattr(getattr(src, "t", None), "family", None)
    cv = getattr(cv, "canvas", None)
    if cv is None:
      m = 16
      return m, h + 2 * m, w + 2 * m
    m, stride = cv.window, cv.window // 2
    return m, -(-(h + 2 * m) // stride) * stride, -(-(w + 2 * m) // stride) * stride

  def _compute_patch(self, rec: dict) -> dict:
    h, w = rec["h"], rec["w"]
    mask = edits_lib.decode_png(rec["mask"], "mask", (h, w)) > 0
    painted = _painted(rec.get("labels"), mask, len(self.source.class_names))
    m, hh, ww = self.edit_context(h, w)
    # The context as it is now, without this edit itself (edits before it in the log apply).
    ctx = self.read(rec["seed"], rec["y0"] - m, rec["x0"] - m, hh, ww, before=rec["id"])
    patch = self.source.inpaint(rec["seed"], rec["y0"], rec["x0"], ctx, m, mask, painted)
    arrays = {"mask": mask, "rgb": patch.rgb}
    if patch.labels is not None:
      arrays["labels"] = patch.labels
    if patch.height is not None:
      arrays["height"] = patch.height
    return arrays

  def edit(self, rec: dict) -> dict:
    """Runs on the worker: computes the patch, stores it, then appends the line."""
    with self.log.lock:
      rec = dict(rec, id=self.log.new_id())
      arrays = self._compute_patch(rec)
      patch = Layers(arrays["rgb"], arrays.get("labels"), arrays.get("height"))
      self.log.add(rec, patch, arrays["mask"])
      self._patches[rec["id"]] = arrays
    return {"id": rec["id"], "seed": rec["seed"], "y0": rec["y0"], "x0": rec["x0"], "h": rec["h"], "w": rec["w"],
            "changed_pixels": int(arrays["mask"].sum()), "version": self.log.version}  # fmt: skip

  # ---- response cache
  def cached(self, key):
    with self.cache_lock:
      v = self.cache.get((key, self.log.version))
      if v is not None:
        self.cache.move_to_end((key, self.log.version))
      return v

  def store(self, key, value):
    with self.cache_lock:
      self.cache[(key, self.log.version)] = value
      while len(self.cache) > self.cache_size:
        self.cache.popitem(last=False)


def _painted(labels, mask: np.ndarray, num_classes: int):
  """The edit's painted class per pixel (-1: erase), or None; errors name ``labels``."""
  if labels is None or labels == "":
    return None
  if isinstance(labels, bool):
    raise BadRequest("labels", "labels: must be a class index or a base64 PNG of class indices")
  if isinstance(labels, int):
    if not 0 <= labels < num_classes:
      raise BadRequest("labels", f"labels={labels}: must be a class index in 0..{num_classes - 1}")
    return np.where(mask, labels, -1).astype(np.int16)
  try:
    a = edits_lib.decode_png(labels, "labels", mask.shape, transparent=255)
  except ValueError as e:
    raise BadRequest("labels", str(e)) from None
  bad = (a != 255) & (a >= num_classes) & mask
  if bad.any():
    raise BadRequest(
      "labels", f"labels: class {int(a[bad][0])} is not a class; use 0..{num_classes - 1}, or 255 to erase"
    )
  return np.where(mask & (a != 255), a, -1).astype(np.int16)


# --------------------------------------------------------------------------- encoding


def _png(arr: np.ndarray, palette=None) -> bytes:
  if palette is not None:
    im = Image.fromarray(arr, "P")
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(palette)] = np.asarray(palette)[:256]
    im.putpalette(pal.reshape(-1).tolist())
  elif arr.dtype == np.uint16:
    im = Image.fromarray(arr.astype(np.uint16))
  else:
    im = Image.fromarray(arr)
  buf = io.BytesIO()
  im.save(buf, format="PNG", compress_level=1)
  return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
  buf = io.BytesIO()
  np.save(buf, arr)
  return buf.getvalue()


def height16(h: np.ndarray) -> np.ndarray:
  return np.clip(np.round(np.asarray(h, np.float64) * 65535.0), 0, 65535).astype(np.uint16)


def hillshade(h: np.ndarray, metres_per_pixel: float, height_range_m: float) -> np.ndarray:
  """[h, w] heights in [0, 1] (with a 1-px margin) -> [h-2, w-2, 3] uint8 shaded relief, light from the north-west."""
  z = np.asarray(h, np.float32) * height_range_m
  gy, gx = np.gradient(z, metres_per_pixel)
  n = np.sqrt(gx * gx + gy * gy + 1.0)
  light = np.array([-1.0, -1.0, 1.4], np.float32)
  light /= np.linalg.norm(light)
  lam = np.clip((light[0] * -gx + light[1] * -gy + light[2]) / n, 0, 1)
  lo = np.clip(0.25 + 0.75 * lam, 0, 1)
  tint = 0.55 + 0.45 * np.asarray(h, np.float32)
  g = np.clip(lo * tint * 255.0 + 0.5, 0, 255).astype(np.uint8)[1:-1, 1:-1]
  return np.repeat(g[..., None], 3, -1)


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
  if f == 1:
    return a
  h, w = a.shape[0] // f, a.shape[1] // f
  return a[: h * f, : w * f].reshape(h, f, w, f, *a.shape[2:]).mean((1, 3))


# --------------------------------------------------------------------------- request parsing


def _int(q, name: str, default=None, lo: int = -MAX_COORD, hi: int = MAX_COORD) -> int:
  v = q.get(name)
  if v is None or v == "":
    if default is None:
      raise BadRequest(name, f"{name}: required (an integer)")
    return default
  if isinstance(v, bool):
    raise BadRequest(name, f"{name}={v!r}: must be an integer")
  if isinstance(v, int):
    i = v
  else:
    try:
      i = int(str(v).strip())
    except ValueError:
      raise BadRequest(name, f"{name}={v!r}: must be an integer") from None
  if not lo <= i <= hi:
    raise BadRequest(name, f"{name}={i}: must be in {lo}..{hi}")
  return i


def _choice(q, name: str, allowed, default: str) -> str:
  v = q.get(name) or default
  if v not in allowed:
    raise BadRequest(name, f"{name}={v!r}: must be one of {list(allowed)}")
  return v


def _window(q, world: ServedWorld, max_pixels: int | None = None):
  src = world.source
  seed = _int(q, "seed", 0, 0, 2**31 - 1)
  y0, x0 = _int(q, "y0"), _int(q, "x0")
  h, w = _int(q, "h", lo=1, hi=8192), _int(q, "w", lo=1, hi=8192)
  cap = max_pixels or src.max_region_pixels
  if h * w > cap:
    raise BadRequest("h", f"h x w = {h}x{w} = {h * w} px: over the limit of {cap} px for this source")
  return seed, y0, x0, h, w


async def _json_object(request: Request, fields: str) -> dict:
  """The request's JSON body, a 400 naming ``body`` unless it is an object."""
  try:
    body = await request.json()
  except Exception:  # noqa: BLE001 - any undecodable body is the client's error
    raise BadRequest("body", f"body: must be a JSON object {fields}") from None
  if not isinstance(body, dict):
    raise BadRequest("body", f"body: must be a JSON object {fields}")
  return body


def _error(e: Exception, status: int = 400, parameter: str | None = None) -> JSONResponse:
  body = {"error": str(e).splitlines()[0] if str(e) else type(e).__name__}
  if parameter:
    body["parameter"] = parameter
  return JSONResponse(body, status_code=status)


# --------------------------------------------------------------------------- the app


def make_app(source: Source, edits_dir: str, max_queue: int = 64) -> Starlette:
  world = ServedWorld(source, edits_dir, max_queue)

  async def run(job: _Job, request: Request | None = None):
    world.worker.submit(job)
    try:
      while True:
        try:
          return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)), 0.25)
        except asyncio.TimeoutError:
          if request is not None and await request.is_disconnected():
            job.gone = True
            raise asyncio.CancelledError from None
    except asyncio.CancelledError:
      job.gone = True
      raise

  def guarded(handler):
    async def wrapped(request: Request):
      try:
        return await handler(request)
      except BadRequest as e:
        return _error(e, 400, e.parameter)
      except Busy as e:
        return _error(e, 503)
      except ValueError as e:  # a source's own refusal of the arguments
        return _error(e, 400)

    return wrapped

  def _need_places():
    if not source.unbounded:
      raise BadRequest("source", f"{source.name}: draws sprites, not places; use /api/sample")

  async def info(request: Request):
    d = source.info()
    d["edits"] = len(world.log.active)
    d["version"] = world.log.version
    return JSONResponse(d)

  async def region(request: Request):
    _need_places()
    q = request.query_params
    seed, y0, x0, h, w = _window(q, world)
    layer = _choice(q, "layer", source.layers, "rgb")
    fmt = _choice(q, "format", FORMATS, "png")
    if layer == "rgb" and fmt == "raw16":
      raise BadRequest("format", "format='raw16': for layer=height or layer=labels; rgb is png or npy")
    key = ("region", seed, y0, x0, h, w, layer, fmt)
    got = world.cached(key)
    if got is None:
      lay = await run(_Job("region", seed, (y0, x0, h, w)), request)
      got = _encode_layer(lay, layer, fmt, source)
      world.store(key, got)
    body, media = got
    headers = {"X-Height": str(h), "X-Width": str(w), "X-Metres-Per-Pixel": repr(source.metres_per_pixel)}
    if layer == "height":
      headers["X-Metres-Per-Step"] = repr(source.height_range_m / 65535.0)
      headers["X-Base-Elevation-M"] = "0.0"
      headers["X-Height-Range-M"] = repr(source.height_range_m)
    return Response(body, media_type=media, headers=headers)

  async def tile(request: Request):
    _need_places()
    p, q = request.path_params, request.query_params
    layer = p["layer"]
    if layer not in source.layers:
      raise BadRequest("layer", f"layer={layer!r}: must be one of {list(source.layers)}")
    z = _int(p, "z", lo=0, hi=source.max_zoom)
    span = TILE << z
    lim = MAX_COORD // span
    tx, ty = _int(p, "x", lo=-lim, hi=lim), _int(p, "y", lo=-lim, hi=lim)
    seed = _int(q, "seed", 0, 0, 2**31 - 1)
    key = ("tile", layer, z, tx, ty, seed)
    got = world.cached(key)
    if got is None:
      f = 1 << z
      pad = f if layer == "height" else 0  # one coarse pixel around, for the shading's gradient
      y0, x0 = ty * span - pad, tx * span - pad
      lay = await run(_Job("region", seed, (y0, x0, span + 2 * pad, span + 2 * pad)), request)
      if layer == "rgb":
        img = block_mean(lay.rgb.astype(np.float32), f)
        got = _png(np.clip(img + 0.5, 0, 255).astype(np.uint8))
      elif layer == "labels":
        got = _png(np.ascontiguousarray(lay.labels[::f, ::f]), source.palette)
      else:
        got = _png(hillshade(block_mean(lay.height, f), source.metres_per_pixel * f, source.height_range_m))
      world.store(key, got)
    return Response(got, media_type="image/png", headers={"Cache-Control": "no-cache"})

  async def edit(request: Request):
    if not source.editable:
      return _error(ValueError(f"{source.name} cannot regenerate a region (editable: false)"), 409)
    _need_places()
    body = await _json_object(request, "{seed, y0, x0, h, w, mask, labels}")
    seed, y0, x0, h, w = _window(body, world, MAX_EDIT_PIXELS)
    try:
      mask = edits_lib.decode_png(body.get("mask"), "mask", (h, w)) > 0
    except ValueError as e:
      raise BadRequest("mask", str(e)) from None
    if not mask.any():
      raise BadRequest("mask", "mask: no pixel is set (nonzero = regenerate)")
    labels = body.get("labels")
    _painted(labels, mask, len(source.class_names))  # refuse bad labels before queueing
    rec = {"seed": seed, "y0": y0, "x0": x0, "h": h, "w": w, "mask": body["mask"], "labels": labels}
    out = await run(_Job("call", fn=lambda: world.edit(rec)))
    return JSONResponse(out)

  async def sketch(request: Request):
    sk = source.sketch_info()
    if sk is None:
      return _error(ValueError(f"{source.name} takes no sketches (a two-level model with labels does)"), 409)
    body = await _json_object(request, "{seed, y0, x0, h, w, labels, strength}")
    seed, y0, x0, h, w = _window(body, world, MAX_SKETCH_PIXELS)
    f = sk["factor"]
    for name, v in (("y0", y0), ("x0", x0), ("h", h), ("w", w)):
      if v % f:
        raise BadRequest(
          name, f"{name}={v}: must be a multiple of the model's factor {f} (one sketch pixel per {f}x{f})"
        )
    try:
      idx = edits_lib.decode_png(body.get("labels"), "labels", (h // f, w // f), transparent=255)
    except ValueError as e:
      raise BadRequest("labels", str(e)) from None
    n = len(source.class_names)
    bad = (idx >= n) & (idx != 255)
    if bad.any():
      raise BadRequest("labels", f"labels: value {int(idx[bad][0])} is not a class (0..{n - 1}, or 255: not painted)")
    if (idx == 255).all():
      raise BadRequest("labels", "labels: no pixel is painted (class indices; 255: not painted)")
    strength = body.get("strength", 0.0)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= float(strength) <= 1.0:
      raise BadRequest(
        "strength", f"strength={strength!r}: must be a number in [0, 1] (0 keeps the sketch, 1 ignores it)"
      )
    rec = {"seed": seed, "y0": y0, "x0": x0, "h": h, "w": w, "labels": body["labels"], "strength": float(strength)}
    out = await run(_Job("call", fn=lambda: world.sketch(rec)))
    return JSONResponse(out)

  async def undo(request: Request):
    edit_id = request.path_params["id"]
    ok = await run(_Job("call", fn=lambda: world.log.undo(edit_id)))
    if not ok:
      return _error(ValueError(f"id={edit_id!r}: no active edit with that id"), 404, "id")
    return JSONResponse({"id": edit_id, "undone": True, "version": world.log.version})

  async def list_edits(request: Request):
    es = [{k: world.log.edits[i][k] for k in ("id", "op", "seed", "y0", "x0", "h", "w")} for i in world.log.active]
    return JSONResponse({"edits": es, "version": world.log.version})

  async def sample(request: Request):
    q = request.query_params
    seed = _int(q, "seed", 0, 0, 2**31 - 1)
    index = _int(q, "index", 0, 0, 2**31 - 1)
    cond = q.get("cond", "")
    rgb = await run(_Job("call", fn=lambda: source.sample(seed, index, cond)), request)
    return Response(_png(rgb), media_type="image/png")

  async def export(request: Request):
    _need_places()
    q = request.query_params
    fmt = _choice(q, "format", EXPORT_FORMATS, "")
    seed, y0, x0, h, w = _window(q, world)
    lay = await run(_Job("region", seed, (y0, x0, h, w)), request)
    data = await asyncio.to_thread(_export_zip, source, lay, fmt, seed, (y0, x0, h, w))
    name = f"{source.world or 'scene'}_{fmt}_s{seed}_y{y0}_x{x0}_{h}x{w}.zip"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type="application/zip", headers=headers)

  async def index(request: Request):
    return FileResponse(os.path.join(STATIC, "index.html"))

  routes = [
    Route("/", index),
    Route("/api/info", guarded(info)),
    Route("/api/region", guarded(region)),
    Route("/tiles/{layer}/{z}/{x}/{y}.png", guarded(tile)),
    Route("/api/edit", guarded(edit), methods=["POST"]),
    Route("/api/edit/{id}", guarded(undo), methods=["DELETE"]),
    Route("/api/sketch", guarded(sketch), methods=["POST"]),
    Route("/api/edits", guarded(list_edits)),
    Route("/api/sample", guarded(sample)),
    Route("/api/export", guarded(export)),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
  ]
  app = Starlette(routes=routes)
  app.state.world = world
  return app


def _encode_layer(lay: Layers, layer: str, fmt: str, source: Source) -> tuple[bytes, str]:
  arr = getattr(lay, layer)
  if fmt == "npy":
    if layer == "height":
      arr = (np.asarray(arr, np.float32) * np.float32(source.height_range_m)).astype(np.float32)  # metres
    return _npy(np.ascontiguousarray(arr)), "application/octet-stream"
  if fmt == "raw16":
    v = height16(arr) if layer == "height" else arr.astype(np.uint16)
    return v.astype("<u2").tobytes(), "application/octet-stream"
  if layer == "height":
    return _png(height16(arr)), "image/png"
  if layer == "labels":
    return _png(np.ascontiguousarray(arr), source.palette), "image/png"
  return _png(np.ascontiguousarray(arr)), "image/png"


def _export_zip(source: Source, lay: Layers, fmt: str, seed: int, window) -> bytes:
  """The engine export of one window, zipped (written by the same exporters as ``sample.py --export``)."""
  from genenv_jax import exports
  from genenv_jax.exports.scene import ExportScene

  scene = ExportScene(
    rgb=lay.rgb,
    labels=lay.labels,
    height=lay.height,
    world=source.world,
    class_names=source.class_names,
    palette=source.palette,
    metres_per_pixel=source.metres_per_pixel,
    height_range_m=source.height_range_m,
    source=f"{source.name} seed {seed} window {window} (served)",
  )
  tmp = tempfile.mkdtemp(prefix="genenv_export_")
  try:
    try:
      exports.export(scene, tmp, [fmt], {"format": fmt, "source": scene.source})
    except ValueError as e:
      raise BadRequest("format", str(e)) from None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
      for root, _, files in os.walk(tmp):
        for f in sorted(files):
          full = os.path.join(root, f)
          z.write(full, os.path.relpath(full, tmp))
    return buf.getvalue()
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
