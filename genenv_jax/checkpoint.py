"""Orbax checkpoints: save every N steps, keep K, restore the newest that reads whole."""

from __future__ import annotations

import logging
import os

import orbax.checkpoint as ocp


class Checkpointer:
  """Thin wrapper over ``ocp.CheckpointManager`` for a ``TrainState`` pytree."""

  def __init__(self, directory: str, save_every: int, keep: int):
    if save_every < 1 or keep < 1:
      raise ValueError(f"train.ckpt_every={save_every}, train.keep_checkpoints={keep}: both must be >= 1")
    self.directory = os.path.abspath(directory)
    self._options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=self._options)

  def save(self, step: int, state, force: bool = False) -> bool:
    return self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def restore_latest(self, abstract_state, step: int | None = None, set_aside: bool = True):
    """Restores the newest checkpoint that reads whole (or ``step``).

    A newer step folder that is empty or lost files (a kill mid-copy, a full
    disk) is reported and skipped, falling back to the previous one; with
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
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()
