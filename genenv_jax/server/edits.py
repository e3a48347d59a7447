"""Edits of a served world: an append-only log beside the source, and the regenerated pixels.

``edits.jsonl`` holds one JSON line per operation: ``{"op": "edit", "id",
"seed", "y0", "x0", "h", "w", "mask", "labels"}`` (mask and labels as the
base64 PNGs the client sent), ``{"op": "sketch", "id", "seed", "y0", "x0",
"h", "w", "labels", "strength"}`` (a two-level model's coarse map painted at
1/factor; it has no patch: the source draws it) or ``{"op": "undo", "id"}``. The pixels an edit
regenerated are kept in ``patches/<id>.npz`` (written before its log line,
so a failed or interrupted edit leaves no line; a patch without a line is
ignored). The edited world is the base world with the active edits applied
in log order, each over the pixels of its mask: after a restart the same
seed and log give the same bytes. A patch file that is missing is
recomputed from its line (the sources are deterministic).
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading

import numpy as np
from PIL import Image

from genenv_jax.server.sources import Layers

LOG = "edits.jsonl"


def decode_png(text, name: str, shape: tuple[int, int], transparent: int = 0) -> np.ndarray:
  """A base64 PNG (optionally a data: URL) -> [h, w] uint8; errors name ``name``.

  Gray and palette images give their values (a palette image its indices),
  RGB(A) images their red channel; fully transparent pixels read as
  ``transparent`` (a browser canvas's PNG is RGBA).
  """
  if not isinstance(text, str) or not text:
    raise ValueError(f"{name}: must be a base64 PNG string")
  if text.startswith("data:"):
    text = text.split(",", 1)[-1]
  try:
    raw = base64.b64decode(text, validate=True)
    im = Image.open(io.BytesIO(raw))
    im.load()
  except Exception as e:  # noqa: BLE001 - any undecodable input is the client's error
    raise ValueError(f"{name}: not a base64 PNG ({type(e).__name__})") from None
  if im.mode == "P":
    a = np.asarray(im)  # palette indices are the values
  elif im.mode in ("RGBA", "LA"):
    v = np.asarray(im)
    a = np.where(v[..., -1] > 0, v[..., 0], transparent)
  elif im.mode == "RGB":
    a = np.asarray(im)[..., 0]
  elif im.mode == "L":
    a = np.asarray(im)
  else:
    raise ValueError(f"{name}: PNG mode {im.mode!r}; use 8-bit gray, RGB(A) or palette")
  if a.shape != tuple(shape):
    raise ValueError(f"{name}: {a.shape[0]}x{a.shape[1]} px; must be h x w = {shape[0]}x{shape[1]}")
  return a.astype(np.uint8)


class EditLog:
  """The edits of one source, loaded from and appended to ``folder``."""

  def __init__(self, folder: str):
    self.folder = os.path.abspath(os.path.expanduser(folder))
    os.makedirs(os.path.join(self.folder, "patches"), exist_ok=True)
    self.path = os.path.join(self.folder, LOG)
    self.lock = threading.Lock()
    self.edits: dict[str, dict] = {}  # id -> line, insertion ordered
    self.active: list[str] = []
    self.version = 0
    self._next = 1
    if os.path.exists(self.path):
      with open(self.path) as f:
        for n, line in enumerate(f, 1):
          if not line.strip():
            continue
          try:
            rec = json.loads(line)
          except json.JSONDecodeError:
            raise ValueError(f"{self.path}: line {n} is not JSON; the log is damaged (fix or move it)") from None
          self._apply_line(rec)

  def _apply_line(self, rec: dict) -> None:
    if rec.get("op") in ("edit", "sketch"):
      self.edits[rec["id"]] = rec
      self.active.append(rec["id"])
      self._next = max(self._next, int(rec["id"].lstrip("e")) + 1)
    elif rec.get("op") == "undo" and rec.get("id") in self.active:
      self.active.remove(rec["id"])
    self.version += 1

  def _append(self, rec: dict) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps(rec, sort_keys=True) + "\n")
      f.flush()
      os.fsync(f.fileno())
    self._apply_line(rec)

  def patch_path(self, edit_id: str) -> str:
    return os.path.join(self.folder, "patches", f"{edit_id}.npz")

  def new_id(self) -> str:
    return f"e{self._next}"

  def add(self, rec: dict, patch: Layers, mask: np.ndarray) -> str:
    """Stores the patch, then appends the line (the caller holds ``lock``)."""
    edit_id = rec["id"]
    tmp = self.patch_path(edit_id) + ".tmp.npz"
    arrays = {"mask": mask, "rgb": patch.rgb}
    if patch.labels is not None:
      arrays["labels"] = patch.labels
    if patch.height is not None:
      arrays["height"] = patch.height
    np.savez(tmp, **arrays)
    os.replace(tmp, self.patch_path(edit_id))
    self._append(dict(rec, op="edit"))
    return edit_id

  def add_sketch(self, rec: dict) -> str:
    """Appends a sketch line (no patch: a sketch steers the coarse level; the caller holds ``lock``)."""
    self._append(dict(rec, op="sketch"))
    return rec["id"]

  def sketches(self, seed: int) -> list[dict]:
    """Active sketches of ``seed``, in log order."""
    return [self.edits[i] for i in self.active if self.edits[i]["op"] == "sketch" and self.edits[i]["seed"] == seed]

  def undo(self, edit_id: str) -> bool:
    if edit_id not in self.active:
      return False
    self._append({"op": "undo", "id": edit_id})
    return True

  def for_window(self, seed: int, y0: int, x0: int, h: int, w: int) -> list[dict]:
    """Active edits of ``seed`` whose box meets the window, in log order."""
    out = []
    for i in self.active:
      e = self.edits[i]
      if e["seed"] != seed or e["op"] != "edit":
        continue
      if e["y0"] < y0 + h and y0 < e["y0"] + e["h"] and e["x0"] < x0 + w and x0 < e["x0"] + e["w"]:
        out.append(e)
    return out

  def load_patch(self, edit_id: str):
    p = self.patch_path(edit_id)
    if not os.path.exists(p):
      return None
    with np.load(p) as z:
      return {k: z[k] for k in z.files}


def overlay(layers: Layers, y0: int, x0: int, edits: list[dict], patches: list[dict]) -> Layers:
  """``layers`` (the window at y0, x0) with the patches of ``edits`` written over their masks (copies)."""
  if not edits:
    return layers
  out = Layers(*(None if a is None else np.array(a) for a in layers))
  h, w = out.rgb.shape[:2]
  for e, p in zip(edits, patches):
    ya, yb = max(y0, e["y0"]), min(y0 + h, e["y0"] + e["h"])
    xa, xb = max(x0, e["x0"]), min(x0 + w, e["x0"] + e["w"])
    src = (slice(ya - e["y0"], yb - e["y0"]), slice(xa - e["x0"], xb - e["x0"]))
    dst = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
    m = p["mask"][src].astype(bool)
    for name in ("rgb", "labels", "height"):
      arr = getattr(out, name)
      if arr is not None and name in p:
        arr[dst][m] = p[name][src][m]
  return out
