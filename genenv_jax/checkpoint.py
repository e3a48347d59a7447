"""Orbax checkpoints: save every N steps, keep K, restore the newest that reads whole."""

from __future__ import annotations

import hashlib
import json
import logging
import os

import orbax.checkpoint as ocp

DIGEST_FILE = "genenv_sha256.json"


def _file_digests(step_dir: str) -> dict[str, str]:
  """sha256 of every file under a step folder (the digest file itself excluded)."""
  out = {}
  for root, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      rel = os.path.relpath(path, step_dir)
      if rel.startswith(DIGEST_FILE):
        continue
      h = hashlib.sha256()
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          h.update(block)
      out[rel] = h.hexdigest()
  return out


class CorruptCheckpoint(ValueError):
  """A step's files do not match the digests written when it was saved."""


class Checkpointer:
  """Thin wrapper over ``ocp.CheckpointManager`` for a ``TrainState`` pytree."""

  def __init__(self, directory: str, save_every: int, keep: int):
    if save_every < 1 or keep < 1:
      raise ValueError(f"train.ckpt_every={save_every}, train.keep_checkpoints={keep}: both must be >= 1")
    self.directory = os.path.abspath(directory)
    self._options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=self._options)

  @classmethod
  def for_reading(cls, directory: str, workdir: str) -> Checkpointer:
    """A checkpointer over an existing run's folder (sample.py, eval.py)."""
    if not os.path.isdir(directory):
      raise FileNotFoundError(f"workdir={workdir!r}: no checkpoints folder; train first")
    return cls(directory, 1, 1000)

  def save(self, step: int, state, force: bool = False) -> bool:
    self.seal()
    return self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def seal(self) -> None:
    """Waits for pending saves, then writes each finished step's file digests (checked on restore)."""
    self.manager.wait_until_finished()
    for s in self.manager.all_steps():
      step_dir = os.path.join(self.directory, str(s))
      path = os.path.join(step_dir, DIGEST_FILE)
      if os.path.isdir(step_dir) and not os.path.exists(path):
        digests = _file_digests(step_dir)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
          json.dump(digests, f, sort_keys=True)
        os.replace(tmp, path)

  def verify(self, step: int) -> None:
    """Raises ``CorruptCheckpoint`` when a file of ``step`` changed since it was sealed.

    A step saved before digests existed (or killed between its save and its
    seal) has no digest file and is trusted as Orbax reads it.
    """
    step_dir = os.path.join(self.directory, str(step))
    path = os.path.join(step_dir, DIGEST_FILE)
    if not os.path.exists(path):
      return
    with open(path) as f:
      want = json.load(f)
    got = _file_digests(step_dir)
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    if bad:
      raise CorruptCheckpoint(f"{len(bad)} file(s) differ from their saved sha256: {', '.join(bad[:3])}")

  def readable(self, step: int) -> bool:
    """Whether ``step``'s files are all there with their saved digests (no restore)."""
    try:
      self.verify(step)
      return True
    except Exception:  # noqa: BLE001 - any failure to verify is "not readable"
      return False

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def restore_latest(self, abstract_state, step: int | None = None, set_aside: bool = True):
    """Restores the newest checkpoint that reads whole (or ``step``).

    A newer step folder that is empty, lost files (a kill mid-copy, a full
    disk) or whose bytes no longer match the digests written at save time
    is reported and skipped, falling back to the previous one; with
    ``set_aside`` (training) it is renamed ``N.unreadable`` so that step N
    can be saved again.

    Returns:
      (state, step), or (None, None) when no checkpoint can be read.
    """
    steps = self.all_steps()
    if step is not None:
      if step not in steps:
        raise ValueError(f"checkpoint step {step}: not in {self.directory} (steps there: {steps})")
      steps = [step]
    broken = []
    for s in reversed(steps):
      try:
        self.verify(s)
        state = self.manager.restore(s, args=ocp.args.StandardRestore(abstract_state))
        if set_aside:
          self._set_aside(broken)
        return state, s
      except Exception as e:  # Orbax raises many types for broken folders.
        # A failed restore leaves the manager's item registry confused (the
        # next step then fails with "Must provide args of type Composite"):
        # start a fresh manager before trying the older step.
        self.manager.close()
        self.manager = ocp.CheckpointManager(self.directory, options=self._options)
        logging.warning(
          "checkpoint step %d in %s is unreadable, trying an older one: %s: %s",
          s,
          self.directory,
          type(e).__name__,
          str(e).splitlines()[0][:200],
        )
        broken.append(s)
    if set_aside:
      self._set_aside(broken)
    return None, None

  def _set_aside(self, steps):
    """Renames unreadable step folders to ``N.unreadable`` (kept for inspection).

    Otherwise the resumed run could not save step N again when it gets there.
    """
    if not steps:
      return
    for s in steps:
      src = os.path.join(self.directory, str(s))
      dst = f"{src}.unreadable"
      k = 1
      while os.path.exists(dst):
        dst, k = f"{src}.unreadable{k}", k + 1
      if os.path.exists(src):
        os.rename(src, dst)
        logging.warning("moved unreadable checkpoint %s to %s", src, dst)
    self.manager.close()
    self.manager = ocp.CheckpointManager(self.directory, options=self._options)

  def wait(self):
    self.seal()

  def close(self):
    self.manager.close()
