"""Every command in the README and docs/ parses: its script exists, every flag is known, values have the right type.

Commands are extracted from the fenced code blocks (backslash continuations
joined, comments dropped). Each script is imported once in a subprocess
(defining its absl flags without running ``main``), and every documented
command line is parsed by those flags; for ``train.py`` that loads the
``--config=FILE:variant`` and applies every ``--config.KEY=VALUE`` override,
so a renamed config, variant or key fails here. Running the commands takes a
trained workdir and minutes; the cheap one (``python -m genenv_jax.models``)
is run for real.
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
ABSL_SCRIPTS = ("train.py", "sample.py", "eval.py", "serve.py", "tools/export_onnx.py", "tools/reproduce.py")

_PARSE = r"""
import json, runpy, sys
from absl import flags
script, cmds = sys.argv[1], json.loads(sys.argv[2])
sys.argv = [script]
runpy.run_path(script, run_name="docs_check")  # defines the flags; main() does not run
bad = []
for where, args in cmds:
  flags.FLAGS.unparse_flags()
  sys.argv = [script, *args]  # ml_collections reads --config.* overrides from sys.argv
  try:
    flags.FLAGS([script, *args])
  except Exception as e:  # noqa: BLE001
    bad.append(f"{where}: python {script} {' '.join(args)}\n    {type(e).__name__}: {str(e).splitlines()[0]}")
print(json.dumps(bad))
"""


def doc_commands():
  """(file:line, script, args) for every ``python SCRIPT ...`` line of a fenced code block."""
  out = []
  for path in DOCS:
    text = open(path).read()
    for block in re.finditer(r"```[a-z]*\n(.*?)```", text, re.S):
      start = text[: block.start()].count("\n") + 2
      lines = block.group(1).replace("\\\n", " ").splitlines()
      for k, line in enumerate(lines):
        line = re.split(r"\s{2,}#", line)[0].strip()
        if not line.startswith("python ") or line.startswith(("python -m", "python -c")):
          continue
        words = shlex.split(re.sub(r"\$\{?[A-Z_]+\}?", "0", line))
        out.append((f"{os.path.relpath(path, ROOT)}:{start + k}", words[1], words[2:]))
  return out


def test_the_docs_have_commands_for_every_entry_point():
  scripts = {s for _, s, _ in doc_commands()}
  assert {"train.py", "sample.py", "eval.py", "serve.py", "tools/export_onnx.py"} <= scripts


@pytest.mark.parametrize("script", ABSL_SCRIPTS)
def test_every_documented_command_of_a_script_parses(script):
  cmds = [(where, args) for where, s, args in doc_commands() if s == script]
  if not cmds:
    pytest.skip(f"no documented command of {script}")
  # train.py: one process per command (ml_collections registers --config.* overrides for the first config parsed)
  groups = [[c] for c in cmds] if script == "train.py" else [cmds]
  bad = []
  for group in groups:
    r = subprocess.run(
      [sys.executable, "-c", _PARSE, script, json.dumps(group)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    bad += json.loads(r.stdout.strip().splitlines()[-1])
  assert not bad, "documented commands that do not parse:\n" + "\n".join(bad)


def test_every_documented_script_exists():
  missing = sorted({f"{w}: {s}" for w, s, _ in doc_commands() if not os.path.isfile(os.path.join(ROOT, s))})
  assert not missing, missing


def test_the_model_listing_command_runs():
  r = subprocess.run([sys.executable, "-m", "genenv_jax.models"], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0 and "fm_city_regions" in r.stdout
