"""The world server: explore and edit a world or a trained model in a browser, or call it from a game.

  python serve.py --world=city_regions            # real scenes of a built-in world
  python serve.py --workdir=runs/fm_city_cpu      # a trained model
  python serve.py --model=fm_dungeon              # a shipped model

``sources`` draws pure regions, ``edits`` keeps the append-only edit log,
``app`` is the HTTP API and the explorer page (``static/``).
"""
