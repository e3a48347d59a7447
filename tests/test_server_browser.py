"""The explorer page in a real browser: headless Chromium (Debian's package) driven by Playwright.

Loads the page from ``serve.py``'s app on 127.0.0.1, pans by dragging, paints
a lake on a city region, regenerates, and checks what the server stored and
what the page drew. Skipped with a reason where Chromium or Playwright is
missing (``.ci/run`` installs both, so CI runs it). Set
``GENENV_SCREENSHOT=PATH`` to keep the page's screenshot (the docs' picture).
"""

import json
import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
  pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)"),
  pytest.mark.slow,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
  import uvicorn

  from genenv_jax.server import app as server_app
  from genenv_jax.server import sources

  folder = str(tmp_path_factory.mktemp("edits"))
  app = server_app.make_app(sources.WorldSource("city_regions"), folder)
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
  th = threading.Thread(target=srv.run, daemon=True)
  th.start()
  for _ in range(200):
    if srv.started:
      break
    time.sleep(0.05)
  yield f"http://127.0.0.1:{port}", folder
  srv.should_exit = True
  th.join(10)


def _canvas(page) -> np.ndarray:
  """The explorer canvas's pixels [h, w, 4]."""
  data = page.evaluate(
    """() => { const c = document.getElementById('view');
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
               return {w: c.width, h: c.height, px: Array.from(d.data)}; }"""
  )
  return np.array(data["px"], np.uint8).reshape(data["h"], data["w"], 4)


def _wait(page, expr: str, timeout_s: float = 60):
  page.wait_for_function(expr, timeout=timeout_s * 1000)


def test_explorer_pans_paints_a_lake_and_regenerates(server):
  url, folder = server
  with playwright_api.sync_playwright() as p:
    browser = p.chromium.launch(
      executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-background-networking"]
    )
    try:
      page = browser.new_page(viewport={"width": 900, "height": 600})
      page.goto(url + "/")
      _wait(page, "window.explorer && window.explorer.info && window.explorer.drawn >= 6")
      first = _canvas(page)
      assert first[..., :3].std() > 10  # tiles drawn, not a blank canvas
      requested = page.evaluate("window.explorer.requested")
      # Drag to pan 300 px left and 200 px up: new tiles come into view and are fetched and drawn.
      page.mouse.move(600, 400)
      page.mouse.down()
      page.mouse.move(300, 200, steps=8)
      page.mouse.up()
      _wait(page, f"window.explorer.requested > {requested} && window.explorer.drawn >= window.explorer.requested")
      assert page.evaluate("[window.explorer.x, window.explorer.y]") == [300, 200]
      # Paint a lake (class 'water') with a few brush strokes, then regenerate.
      page.select_option("#tool", "paint")
      water = page.evaluate("window.explorer.info.class_names.indexOf('water')")
      page.select_option("#cls", str(water))
      page.fill("#brush", "14")
      before = _canvas(page)
      page.mouse.move(400, 300)
      page.mouse.down()
      for x in range(400, 481, 10):
        page.mouse.move(x, 300 + (x - 400) // 4)
      page.mouse.up()
      page.click("#regen")
      e = "window.explorer"
      _wait(page, f"{e}.version >= 1 && {e}.drawn >= {e}.requested && !{e}.busy")
      time.sleep(0.3)
      after = _canvas(page)
      lines = [json.loads(x) for x in open(os.path.join(folder, "edits.jsonl"))]
      assert [x["op"] for x in lines] == ["edit"] and lines[0]["labels"]  # the server stored the painted edit
      # The strokes ran over page (400..480, 300..320) with radius 14; the canvas starts `top` px down the page.
      top = int(page.evaluate("document.getElementById('view').getBoundingClientRect().top"))
      changed = (after[..., :3].astype(int) - before[..., :3]).any(-1)
      ys, xs = np.nonzero(changed)
      assert len(ys) > 300
      assert ys.min() >= 300 - top - 17 and ys.max() <= 320 - top + 17 and xs.min() >= 400 - 17 and xs.max() <= 480 + 17
      # The lake is drawn in water colours where painted (closer to the palette's water than before).
      pal = np.array(page.evaluate("window.explorer.info.palette"))[water]
      box = (slice(300 - top - 4, 300 - top + 4), slice(436, 444))
      dist = lambda img: np.abs(img[box][..., :3].reshape(-1, 3).astype(int) - pal).sum(-1).mean()  # noqa: E731
      assert dist(after) < dist(before)
      shot = os.environ.get("GENENV_SCREENSHOT")
      if shot:
        page.screenshot(path=shot)
    finally:
      browser.close()


def test_explorer_sketch_button_posts_the_painted_classes_at_one_per_factor(server):
  """The page's sketch request, with /api/info saying the source takes sketches at factor 4 and /api/sketch
  answered by the test (the server side is tests/test_hier.py's, on a trained two-level model)."""
  import base64
  import io

  from PIL import Image

  url, _ = server
  posted = []
  with playwright_api.sync_playwright() as p:
    browser = p.chromium.launch(
      executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-background-networking"]
    )
    try:
      page = browser.new_page(viewport={"width": 700, "height": 500})

      def info(route):
        body = route.fetch().json()
        route.fulfill(json=dict(body, sketch={"factor": 4}))

      def sketch(route):
        posted.append(json.loads(route.request.post_data))
        route.fulfill(json={"id": "e9", "version": 7})

      page.route("**/api/info", info)
      page.route("**/api/sketch", sketch)
      page.goto(url + "/")
      _wait(page, "window.explorer && window.explorer.info && window.explorer.drawn >= 4")
      assert page.is_visible("#sketch")
      page.select_option("#tool", "paint")
      water = page.evaluate("window.explorer.info.class_names.indexOf('water')")
      page.select_option("#cls", str(water))
      page.fill("#brush", "10")
      page.fill("#strength", "0.3")
      page.mouse.move(200, 200)
      page.mouse.down()
      page.mouse.move(260, 200, steps=6)
      page.mouse.up()
      page.click("#sketch")
      _wait(page, "window.explorer.version === 7 && window.explorer.strokes.length === 0")
    finally:
      browser.close()
  (b,) = posted
  assert b["strength"] == 0.3 and all(b[k] % 4 == 0 for k in ("y0", "x0", "h", "w"))
  img = np.asarray(Image.open(io.BytesIO(base64.b64decode(b["labels"].split(",", 1)[1]))).convert("RGB"))[..., 0]
  assert img.shape == (b["h"] // 4, b["w"] // 4)
  assert set(np.unique(img)) == {water, 255} and (img == water).mean() > 0.5  # a 20-px-wide stroke, 80 px long
