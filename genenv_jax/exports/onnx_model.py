"""A trained model as ONNX, for engines: Unity's Inference Engine (Sentis), Unreal's NNE, ONNX Runtime.

What is exported is the network, with its parameters baked in as constants,
at opset 15 by default (Sentis imports opsets 7-15):

- **flow matching**: the velocity field ``v = f(x [B, S, S, C], t [B], label
  [B] int32)``. The sampler runs around it in the engine: start from standard
  normal noise times the temperature, take ``steps`` fixed steps of the
  written solver over ``times`` (t from 0 to 1), then ``finalize``: clip to
  [-1, 1] and set the label channels to the one-hot of their argmax.
  ``sample_with_onnx`` below is that loop, in numpy; the JSON card gives
  its numbers.
- **GAN**: the generator ``x = g(z [B, G, G, Cz], label [B] int32)``, one
  training-size image per latent grid (z standard normal times the
  temperature; larger grids give larger, seamless scenes, as in
  ``genenv_jax.tiling``, up to the fixed shape exported).

Channels of the output (the card's ``channels``): RGB as 3 values in [-1, 1]
(``uint8 = round((v + 1) * 127.5)``), a label map as one-hot channels (argmax
= class index, names and colours in the card), a height as 1 channel in [-1,
1] (``(v + 1) / 2`` of the world's height range in metres).
"""

from __future__ import annotations

import json
import os

import numpy as np

OPSET = 15
# The engine loop's step per fixed-step solver, and the finalize, as the card writes them.
STEP = {
  "euler": "x += dt * v(x, t)",
  "midpoint": "x += dt * v(x + dt/2 * v(x, t), t + dt/2)",
  "heun": "k1 = v(x, t); k2 = v(x + dt * k1, t + dt); x += dt/2 * (k1 + k2)",
}
FINALIZE = "clip to [-1, 1]; label channels = one-hot(argmax) * 2 - 1"


def _channels(trained) -> list[dict]:
  out = []
  for k, s in zip(trained.layout.kinds(), trained.layout.slices().values()):
    out.append({"name": k.name, "start": s.start, "stop": s.stop, "categorical": bool(k.categorical)})
  return out


def export(trained, folder: str, batch: int = 1, opset: int = OPSET, solver: str = "", steps: int = 0) -> dict:
  """Writes ``folder/model.onnx`` and ``folder/model.json``; returns the card."""
  import jax
  import jax.numpy as jnp

  if not isinstance(batch, int) or batch < 1:
    raise ValueError(f"batch={batch!r}: must be a positive integer (the exported batch size)")
  if not 7 <= opset <= 23:
    raise ValueError(f"opset={opset}: must be in 7..23 (Unity's Inference Engine imports 7..15)")
  fam, cfg = trained.family, trained.config
  params = jax.device_get(trained.params)
  s = trained.spec.image_size
  card = {
    "format": "onnx",
    "opset": opset,
    "family": cfg.family,
    "world": trained.world.name if trained.world is not None else "",
    "source": f"{trained.workdir} step {trained.step}",
    "channels": _channels(trained),
    "class_names": list(trained.layout.class_names),
    "palette": np.asarray(trained.layout.palette)[: len(trained.layout.class_names)].tolist(),
    "scene_classes": list(trained.scene_classes),
    "temperature": float(fam.sample_temperature),
  }
  if getattr(trained.world, "ground", None) is not None:
    card["metres_per_pixel"] = trained.world.ground.metres_per_pixel
    card["height_range_m"] = trained.world.ground.height_range_m
  if "hier" in (fam.extras or {}):
    return _export_two_level(trained, folder, card, params, batch, opset, solver, steps)
  if fam.canvas is not None:
    cv = fam.canvas
    solver, steps = _fixed_solver(cv, solver, steps)

    def fn(x, t, label):
      return cv.velocity(params, x, t, label)

    shapes = [
      jax.ShapeDtypeStruct((batch, s, s, cv.channels), jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.int32),
    ]
    names, out_names = ["x", "t", "label"], ["v"]
    card.update(
      kind="flow_matching_velocity",
      inputs=[
        {"name": "x", "shape": [batch, s, s, cv.channels], "dtype": "float32", "layout": "NHWC"},
        {"name": "t", "shape": [batch], "dtype": "float32", "meaning": "time in [0, 1] (0 noise, 1 data)"},
        {"name": "label", "shape": [batch], "dtype": "int32", "meaning": "scene class (0 if unconditional)"},
      ],
      outputs=[{"name": "v", "shape": [batch, s, s, cv.channels], "dtype": "float32"}],
      sampler={
        "solver": solver,
        "steps": steps,
        "times": [i / steps for i in range(steps + 1)],
        "noise": "x0 = temperature * standard normal [B, S, S, C]",
        "step": STEP[solver],
        "finalize": FINALIZE,
        "engine_default_differs": cv.solver == "adaptive",
      },
    )
  elif fam.tiling is not None:
    tl = fam.tiling
    g = s // tl.cell_px

    def fn(z, label):
      return tl.render(params, z, label)

    shapes = [
      jax.ShapeDtypeStruct((batch, g, g, tl.latent_channels), jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.int32),
    ]
    names, out_names = ["z", "label"], ["x"]
    card.update(
      kind="gan_generator",
      inputs=[
        {
          "name": "z",
          "shape": [batch, g, g, tl.latent_channels],
          "dtype": "float32",
          "layout": "NHWC",
          "meaning": "latent grid: temperature * standard normal",
        },  # fmt: skip
        {"name": "label", "shape": [batch], "dtype": "int32", "meaning": "scene class (0 if unconditional)"},
      ],
      outputs=[{"name": "x", "shape": [batch, s, s, trained.spec.channels], "dtype": "float32"}],
    )
  else:
    raise ValueError(
      f"family={cfg.family!r}: no ONNX export here (the flow-matching velocity field and the GAN generator are)"
    )
  card["onnx_bytes"] = _write(fn, shapes, names, out_names, os.path.join(folder, "model.onnx"), opset, card["kind"])
  with open(os.path.join(folder, "model.json"), "w") as f:
    json.dump(card, f, indent=1)
  return card


def _fixed_solver(cv, solver: str, steps: int) -> tuple[str, int]:
  """The engine loop's solver and steps: as asked, else the run's (midpoint, 16 steps for an adaptive run)."""
  solver = solver or (cv.solver if cv.solver != "adaptive" else "midpoint")
  steps = steps or (cv.steps if cv.solver != "adaptive" else 16)
  if solver not in STEP:
    raise ValueError(f"solver={solver!r}: the engine loop takes a fixed-step solver: euler, midpoint or heun")
  return solver, steps


def _write(fn, shapes, names, out_names, path: str, opset: int, kind: str) -> int:
  """``fn`` at ``shapes`` as an ONNX file (written whole or not at all); returns its size in bytes."""
  from jax2onnx import to_onnx

  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  proto = to_onnx(fn, shapes, opset=opset, model_name=kind, input_names=names, output_names=out_names)
  proto = _axes_as_attributes(proto, opset)
  with open(tmp, "wb") as f:
    f.write(proto.SerializeToString())
  os.replace(tmp, path)
  return os.path.getsize(path)


def _export_two_level(trained, folder, card, params, batch, opset, solver, steps) -> dict:
  """A two-level model as two velocity fields, ``coarse.onnx`` and ``fine.onnx``, and the loop between them; a
  three-level one (``hier.top_factor``) as three, ``top.onnx`` first and the coarse field conditioned on it."""
  import jax
  import jax.numpy as jnp

  hr = trained.family.extras["hier"]
  s, C, f = trained.spec.image_size, hr.channels, hr.factor
  CC = hr.coarse_channels  # hier.coarse_field: the coarse level draws a river field after the C channels
  fine_net_v = hr.fine.velocity
  solver, steps = _fixed_solver(hr.fine, solver, steps)
  three = hr.top is not None

  def top(x, t, label):
    return hr.top.velocity(params, x, t, label)

  def coarse(x, t, label):
    return hr.coarse.velocity(params, x, t, label)

  def coarse_on_top(x, cond, t, label):  # the coarse field of three levels: its state carries the top map
    return hr.coarse.velocity(params, jnp.concatenate([x, cond], -1), t, label)[..., :CC]

  def fine(x, cond, t, label):
    return fine_net_v(params, jnp.concatenate([x, cond], -1), t, label)[..., :C]

  cw = hr.coarse.window  # hier.coarse_window: the coarse level's windows (the training size s by default)
  img = jax.ShapeDtypeStruct((batch, s, s, C), jnp.float32)
  img_c = jax.ShapeDtypeStruct((batch, cw, cw, CC), jnp.float32)
  vec, lab = jax.ShapeDtypeStruct((batch,), jnp.float32), jax.ShapeDtypeStruct((batch,), jnp.int32)
  x_in = {"shape": [batch, s, s, C], "dtype": "float32", "layout": "NHWC"}
  xc_in = dict(x_in, shape=[batch, cw, cw, CC])
  t_in = {"name": "t", "shape": [batch], "dtype": "float32", "meaning": "time in [0, 1] (0 noise, 1 data)"}
  l_in = {"name": "label", "shape": [batch], "dtype": "int32", "meaning": "scene class (0 if unconditional)"}
  v_out = [{"name": "v", "shape": [batch, s, s, C], "dtype": "float32"}]
  b, a = s // f, (cw - s // f) // 2
  SC = "S, S" if cw == s else f"{cw}, {cw}"  # the coarse noise's size
  networks = {
    "coarse": {
      "file": "coarse.onnx", "inputs": [dict(xc_in, name="x"), t_in, l_in],
      "outputs": [dict(v_out[0], shape=[batch, cw, cw, CC])],
      "meaning": f"the coarse level: windows of the world downsampled by {f}",
    },
    "fine": {
      "file": "fine.onnx", "inputs": [dict(x_in, name="x"), dict(x_in, name="cond"), t_in, l_in], "outputs": v_out,
      "meaning": "the fine level, conditioned on the coarse map under its window (held fixed while x moves)",
    },
  }  # fmt: skip
  sampler = {
    "solver": solver,
    "steps": steps,
    "times": [i / steps for i in range(steps + 1)],
    "coarse": f"xc = loop(coarse, temperature * standard normal [B, {SC}, C]); clip to [-1, 1]",
    "cond": f"cond = xc[:, {a}:{a + b}, {a}:{a + b}] repeated {f}x along height and width (the fine window "
    "under the coarse window's centre)",
    "fine": "x = loop(fine with cond, temperature * standard normal [B, S, S, C])",
    "step": STEP[solver],
    "finalize": FINALIZE,
  }
  card.update(kind="flow_matching_two_level", factor=f)
  if cw != s:
    card["coarse_window"] = cw
  if three:
    r, CT = hr.top_factor // f, hr.top.channels
    bt, at = cw // r, (s - cw // r) // 2
    img_t = jax.ShapeDtypeStruct((batch, s, s, CT), jnp.float32)
    img_tc = jax.ShapeDtypeStruct((batch, cw, cw, CT), jnp.float32)  # the top map under a coarse window
    xt_in = dict(x_in, shape=[batch, s, s, CT])
    card.update(kind="flow_matching_three_level", top_factor=hr.top_factor)
    if hr.traced is not None:  # hier.top_trace: the top map's last channel
      card["top_trace"] = {
        "class": trained.layout.class_names[hr.traced[0]],
        "channel": C,
        "meaning": f"2 * share - 1 of each top block's coarse pixels where the class covers at least 1/{f}",
      }
    networks = {
      "top": {
        "file": "top.onnx", "inputs": [dict(xt_in, name="x"), t_in, l_in],
        "outputs": [dict(v_out[0], shape=[batch, s, s, CT])],
        "meaning": f"the top level: windows of the world downsampled by {hr.top_factor}",
      },
      "coarse": dict(
        networks["coarse"],
        inputs=[dict(xc_in, name="x"), dict(xt_in, name="cond", shape=[batch, cw, cw, CT]), t_in, l_in],
        meaning=f"the coarse level (the world downsampled by {f}), conditioned on the top map under its window",
      ),
      "fine": networks["fine"],
    }  # fmt: skip
    sampler = dict(
      sampler,
      top=f"xt = loop(top, temperature * standard normal [B, S, S, {'C' if CT == C else 'C + 1'}]); clip to [-1, 1]",
      top_cond=f"top_cond = xt[:, {at}:{at + bt}, {at}:{at + bt}] repeated {r}x along height and width (the "
      "coarse window under the top window's centre)",
      coarse=f"xc = loop(coarse with top_cond, temperature * standard normal [B, {SC}, C]); clip to [-1, 1]",
    )
  card.update(networks=networks, sampler=sampler)
  if hr.fine_temperature != 1.0:  # a colder fine level than trained
    card["fine_temperature"] = hr.fine_temperature
    scale = f"{hr.fine_temperature:g} * temperature"
    card["sampler"]["fine"] = f"x = loop(fine with cond, {scale} * standard normal [B, S, S, C])"
  if hr.upper_temperature != 1.0:  # warmer (or colder) upper levels than trained
    card["upper_temperature"] = hr.upper_temperature
    up = f"{hr.upper_temperature:g} * temperature"
    for k in ("top", "coarse"):
      if k in card["sampler"]:
        card["sampler"][k] = card["sampler"][k].replace("temperature * standard normal", f"{up} * standard normal")
  if hr.top_temperature != 1.0:  # a warmer (or colder) top level than trained, on top of upper_temperature
    card["top_temperature"] = hr.top_temperature
    card["sampler"]["top"] = card["sampler"]["top"].replace(
      "temperature * standard normal", f"{hr.top_temperature:g} * temperature * standard normal"
    )
  if hr.field is not None:  # hier.coarse_field: the coarse map's last channel, carved into the C before cond
    a, b = hr.one_hot
    card["coarse_field"] = {
      "class": trained.layout.class_names[hr.field], "class_index": hr.field, "channel": C,
      "label_channels": [a, b], "share_power": hr.share_power, "river_share": hr.river_share,
      "meaning": "a signed river field (genenv_jax.data.river_field): where its 3x3 mean (edges repeated) changes "
      "sign between a pixel and the next one down or right, the class's share of the first is raised to "
      "river_share and the other classes' shares scaled to keep their sum (river_field.carve)",
    }  # fmt: skip
    card["sampler"]["coarse"] = card["sampler"]["coarse"].replace(
      ", C]); clip to [-1, 1]", ", C + 1]); clip to [-1, 1]; carve coarse_field's rivers into the first C channels"
    )
  if hr.pruning:  # hier.min_water_blocks: small water pieces of the (carved) coarse map pruned before cond
    from genenv_jax.data import river_field

    a, b = hr.one_hot
    card["min_water_blocks"] = {
      "class": trained.layout.class_names[hr.prune_class], "class_index": hr.prune_class,
      "min_blocks": hr.min_water_blocks, "share": river_field.PRUNE_SHARE, "label_channels": [a, b],
      "share_power": hr.share_power,
      "meaning": "coarse pixels whose share of the class is at least share form 4-connected pieces; in a piece of "
      "fewer than min_blocks pixels the class's share is set to 0 and the other classes' shares scaled to keep "
      "their sum (river_field.prune), after coarse_field's carving",
    }  # fmt: skip
    card["sampler"]["coarse"] += "; prune min_water_blocks' small water pieces"
  if hr.share_power != 1.0:  # only what reads a coarse map's label channels as shares needs it
    card["coarse_label_channels"] = f"2 * share ** {hr.share_power:g} - 1 (each class's share of the block)"
  sizes = [
    _write(fine, [img, img, vec, lab], ["x", "cond", "t", "label"], ["v"], os.path.join(folder, "fine.onnx"), opset,
           "fine"),
  ]  # fmt: skip
  if three:
    sizes += [
      _write(top, [img_t, vec, lab], ["x", "t", "label"], ["v"], os.path.join(folder, "top.onnx"), opset, "top"),
      _write(coarse_on_top, [img_c, img_tc, vec, lab], ["x", "cond", "t", "label"], ["v"],
             os.path.join(folder, "coarse.onnx"), opset, "coarse"),
    ]  # fmt: skip
  else:
    sizes.append(
      _write(
        coarse, [img_c, vec, lab], ["x", "t", "label"], ["v"], os.path.join(folder, "coarse.onnx"), opset, "coarse"
      )
    )
  card["onnx_bytes"] = sum(sizes)
  with open(os.path.join(folder, "model.json"), "w") as fh:
    json.dump(card, fh, indent=1)
  return card


# Reductions whose axes moved from an attribute to an input in opset 18 (ReduceSum already did in 13).
_REDUCE_18 = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
              "ReduceLogSumExp", "ReduceSumSquare"}  # fmt: skip


def _axes_as_attributes(proto, opset: int):
  """Below opset 18, reductions take ``axes`` as an attribute: rewrites nodes jax2onnx emitted with an axes input."""
  import onnx
  from onnx import helper, numpy_helper

  if opset >= 18:
    return proto
  g = proto.graph
  consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
  for n in g.node:
    if n.op_type == "Constant":
      for a in n.attribute:
        if a.name == "value":
          consts[n.output[0]] = numpy_helper.to_array(a.t)
  for n in g.node:
    if n.op_type in _REDUCE_18 and len(n.input) == 2 and n.input[1]:
      if n.input[1] not in consts:
        raise ValueError(f"ONNX export at opset {opset}: {n.op_type} with computed axes; export at opset 18")
      axes = [int(a) for a in np.asarray(consts[n.input[1]]).reshape(-1)]
      del n.input[1]
      n.attribute.append(helper.make_attribute("axes", axes))
  onnx.checker.check_model(proto)
  return proto


def session(folder: str):
  """An onnxruntime CPU session of ``folder/model.onnx`` and its card."""
  import onnxruntime as ort

  with open(os.path.join(folder, "model.json")) as f:
    card = json.load(f)
  sess = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"])
  return sess, card


def sample_with_onnx(
  folder: str,
  noise: np.ndarray,
  label: np.ndarray | None = None,
  fine_noise: np.ndarray | None = None,
  top_noise: np.ndarray | None = None,
) -> np.ndarray:
  """The card's sampler around the ONNX velocity field: noise [B, S, S, C] -> finalized samples (numpy).

  A two-level model (``coarse.onnx``, ``fine.onnx``): ``noise`` starts the coarse level ([B, W, W, C], W the
  card's ``coarse_window`` where it has one) and ``fine_noise`` the fine one (scaled by the card's
  ``fine_temperature`` where it has one), as the card's sampler says; a three-level one (``top.onnx`` too):
  ``top_noise`` starts the top.
  """
  with open(os.path.join(folder, "model.json")) as f:
    card = json.load(f)
  b = noise.shape[0]
  label = np.zeros((b,), np.int32) if label is None else label.astype(np.int32)
  if card["kind"] in ("flow_matching_two_level", "flow_matching_three_level"):
    import onnxruntime as ort

    three = card["kind"] == "flow_matching_three_level"
    if fine_noise is None or (three and top_noise is None):
      raise ValueError(f"{folder}: a {card['kind']} model; give fine_noise (and top_noise for three levels)")
    run = {
      k: ort.InferenceSession(os.path.join(folder, n["file"]), providers=["CPUExecutionProvider"]).run
      for k, n in card["networks"].items()
    }
    feed = lambda x, t: {"x": x.astype(np.float32), "t": np.full((b,), t, np.float32), "label": label}  # noqa: E731
    clip = lambda x: np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)  # noqa: E731

    def centre(x, r, size):  # the block of x's window that a size-px window r times finer sees, repeated up
      w = size // r
      a = (x.shape[1] - w) // 2
      return x[:, a : a + w, a : a + w].repeat(r, 1).repeat(r, 2).astype(np.float32)

    up = card.get("upper_temperature", 1.0)  # hier.upper_temperature: the top and coarse levels' noise scale
    noise = up * noise
    if three:
      xt = clip(
        _solve(
          lambda x, t: run["top"](None, feed(x, t))[0],
          up * card.get("top_temperature", 1.0) * top_noise,
          card["sampler"],
        )
      )
      top_cond = centre(xt, card["top_factor"] // card["factor"], noise.shape[1])
      xc = _solve(lambda x, t: run["coarse"](None, dict(feed(x, t), cond=top_cond))[0], noise, card["sampler"])
    else:
      xc = _solve(lambda x, t: run["coarse"](None, feed(x, t))[0], noise, card["sampler"])
    xc = clip(xc)
    if "coarse_field" in card:  # the river field's sign changes carved into the map (river_field.carve)
      from genenv_jax.data import river_field

      cf = card["coarse_field"]
      xc = river_field.carve(
        xc[..., : cf["channel"]], xc[..., cf["channel"]], tuple(cf["label_channels"]), cf["class_index"],
        cf["river_share"], cf["share_power"],
      )  # fmt: skip
    if "min_water_blocks" in card:  # small water pieces pruned (river_field.prune)
      from genenv_jax.data import river_field

      mw = card["min_water_blocks"]
      xc = river_field.prune(xc, tuple(mw["label_channels"]), mw["class_index"], mw["min_blocks"], mw["share_power"])
    cond = centre(xc, card["factor"], fine_noise.shape[1])
    fine_noise = card.get("fine_temperature", 1.0) * fine_noise  # hier.fine_temperature: a colder fine level
    x = _solve(lambda x, t: run["fine"](None, dict(feed(x, t), cond=cond))[0], fine_noise, card["sampler"])
    return _finalize(x, card)
  sess, card = session(folder)
  if card["kind"] != "flow_matching_velocity":
    raise ValueError(f"{folder}: a {card['kind']}, not a velocity field")

  def v(x, t):
    return sess.run(None, {"x": x.astype(np.float32), "t": np.full((b,), t, np.float32), "label": label})[0]

  return _finalize(_solve(v, noise, card["sampler"]), card)


def _solve(v, noise: np.ndarray, sm: dict) -> np.ndarray:
  steps, solver = sm["steps"], sm["solver"]
  x, dt = noise.astype(np.float32), np.float32(1.0 / steps)
  for i in range(steps):
    t = np.float32(i) * dt
    k1 = v(x, t)
    if solver == "euler":
      x = x + dt * k1
    elif solver == "midpoint":
      x = x + dt * v(x + np.float32(0.5) * dt * k1, t + np.float32(0.5) * dt)
    else:
      x = x + np.float32(0.5) * dt * (k1 + v(x + dt * k1, t + dt))
  return x


def _finalize(x: np.ndarray, card: dict) -> np.ndarray:
  x = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
  for ch in card["channels"]:
    if ch["categorical"]:
      a, c = ch["start"], ch["stop"]
      x[..., a:c] = np.eye(c - a, dtype=np.float32)[x[..., a:c].argmax(-1)] * 2.0 - 1.0
  return x
