"""The city world: determinism, validity of every real scene, rules that can fail."""

import numpy as np
import pytest

from genenv_jax.scenes import city, forest, get_world, terrain


@pytest.mark.parametrize("world", ["city", "terrain", "forest", "characters"])
@pytest.mark.parametrize("size,n", [(16, 60), (32, 120), (64, 60), (128, 15)])
def test_every_real_scene_passes_every_rule(world, size, n):
  w = get_world(world)
  for seed in range(n):
    sc = w.generate(seed, size)
    v = w.validity(sc.labels, sc.height)
    assert all(v.values()), (size, seed, v)


def test_scene_layers_and_determinism():
  w = get_world("city")
  a, b = w.generate(7, 64), w.generate(7, 64)
  np.testing.assert_array_equal(a.rgb, b.rgb)
  assert a.rgb.shape == (64, 64, 3) and a.rgb.dtype == np.uint8
  assert a.labels.shape == (64, 64) and a.height.shape == (64, 64)
  assert not np.array_equal(a.rgb, w.generate(8, 64).rgb)
  # Shading and texture: one class shows many colours, not one flat colour.
  road = a.labels == city.ROAD
  assert len(np.unique(a.rgb[road].reshape(-1, 3), axis=0)) > 10


def test_worlds_have_variety():
  w = get_world("city")
  kinds = {w.generate(s, 32).scene_class for s in range(60)}
  assert kinds == {0, 1, 2}
  fr = np.stack([w.statistics(w.generate(s, 32).labels) for s in range(40)])
  assert (fr[:, city.PARK] > 0).mean() > 0.3
  assert (fr[:, city.BUILDING] > 0.05).mean() > 0.8


def test_rules_reject_broken_scenes():
  w = get_world("city")
  sc = w.generate(3, 64)
  lab = sc.labels.copy()
  # Cut every road along a line through the middle: the network falls apart.
  lab[:, 30:34][lab[:, 30:34] == city.ROAD] = city.GROUND
  lab[30:34, :][lab[30:34, :] == city.ROAD] = city.GROUND
  assert not w.validity(lab, sc.height)["road_connected"]
  # Buildings without roads.
  lab = sc.labels.copy()
  lab[lab == city.ROAD] = city.GROUND
  v = w.validity(lab, sc.height)
  assert not v["buildings_touch_road"] and not v["plausible_layout"]
  # Flat buildings contradict the height map.
  assert not w.validity(sc.labels, np.zeros_like(sc.height))["heights_consistent"]
  # Noise is invalid.
  rng = np.random.default_rng(0)
  noise = rng.integers(0, 5, size=(64, 64)).astype(np.uint8)
  assert not all(w.validity(noise, rng.random((64, 64))).values())


def test_bad_size_and_world_name():
  w = get_world("city")
  with pytest.raises(ValueError, match="multiple of 16"):
    w.generate(0, 40)
  with pytest.raises(ValueError, match="known worlds"):
    get_world("atlantis")


def test_terrain_layers_rules_and_determinism():
  w = get_world("terrain")
  a = w.generate(5, 64)
  np.testing.assert_array_equal(a.rgb, w.generate(5, 64).rgb)
  assert a.rgb.shape == (64, 64, 3) and a.height.min() >= 0 and a.height.max() <= 1
  kinds = {w.generate(s, 32).scene_class for s in range(30)}
  assert kinds == {0, 1, 2}
  # Water lifted onto a mountain top breaks the rules.
  lab = a.labels.copy()
  lab[a.height > 0.6] = terrain.WATER
  assert not w.validity(lab, a.height)["water_is_low"] or not (a.height > 0.6).any()
  flat = np.full_like(a.height, 0.5)
  assert not all(w.validity(a.labels, flat).values())


def test_forest_rules_reject_broken_scenes():
  w = get_world("forest")
  sc = w.generate(4, 64)
  assert (sc.labels == forest.TRUNK).any() and sc.rgb.shape == (64, 64, 3)
  upside_down = sc.labels[::-1].copy()
  assert not w.validity(upside_down, sc.height)["sky_on_top"]
  floating = sc.labels.copy()
  floating[floating == forest.GROUND] = forest.SKY
  assert not all(w.validity(floating, sc.height).values())


def test_character_rules_reject_broken_sprites():
  w = get_world("characters")
  sc = w.generate(2, 32)
  assert all(w.validity(sc.labels).values())
  assert not w.validity(sc.labels[::-1].copy())["parts_in_order"]
  shifted = np.zeros_like(sc.labels)
  shifted[:, 8:] = sc.labels[:, :-8]  # no wrap-around
  assert not w.validity(shifted)["centred"]
  noise = np.random.default_rng(0).integers(0, 7, (32, 32)).astype(np.uint8)
  assert not all(w.validity(noise).values())


def test_characters_hold_people_animals_and_robots_each_judged_by_its_own_parts():
  from genenv_jax.scenes import characters as ch

  w = get_world("characters")
  assert any("animal" in n for n in w.scene_class_names) and "robot" in w.scene_class_names
  by_class = {}
  for seed in range(80):
    sc = w.generate(seed, 32)
    by_class.setdefault(sc.scene_class, sc)
  assert sorted(by_class) == list(range(6))
  want = {3: ch.QUADRUPED, 4: ch.BIRD, 5: ch.ROBOT}
  for c, kind in want.items():
    sc = by_class[c]
    assert w.kind_of(sc.labels) == kind and set(np.unique(sc.labels)) == {0, *ch.KIND_PARTS[kind]}
    assert all(w.validity(sc.labels).values())
    # Upside down, the legs are above the body (a robot's joints above its lights).
    assert not w.validity(sc.labels[::-1].copy())["parts_in_order"], c
  robot = by_class[5].labels.copy()
  robot[robot == ch.JOINT] = ch.SKIN  # a person's arms and legs on a robot
  assert not w.validity(robot)["one_kind"]
  bird = by_class[4].labels.copy()
  bird[bird == ch.BEAK] = ch.BACKGROUND
  bird[bird == ch.WING] = ch.FUR
  assert w.kind_of(bird) == ch.QUADRUPED  # without wing and beak it reads as a quadruped (and passes as one)
  bird = by_class[4].labels.copy()
  bird[bird == ch.BEAK] = ch.BACKGROUND
  assert w.kind_of(bird) == ch.BIRD and not w.validity(bird)["has_parts"]
  robot = by_class[5].labels.copy()
  robot[:, :16] = np.where(robot[:, :16] == ch.JOINT, ch.BACKGROUND, robot[:, :16])  # one arm and leg gone
  assert not w.validity(robot)["symmetric_body"]
  # Side views are not judged for symmetry: a quadruped facing either way passes.
  assert all(w.validity(by_class[3].labels[:, ::-1].copy()).values())


def test_class_recognition_reads_a_characters_sample_by_the_kind_its_parts_make():
  """tools/class_recognition.py on characters: a sample counts for its class when its parts make that class's kind
  (people's three classes share one kind); real sprites are recognised every time."""
  import types

  import helpers

  tool = helpers.load_script("tools/class_recognition.py")
  w = get_world("characters")
  model = types.SimpleNamespace(world=w, scene_classes=w.scene_class_names, spec=types.SimpleNamespace(image_size=32))
  names, hits, real_rate = tool.RECOGNISERS["characters"](model)
  assert names == w.scene_class_names and real_rate == 1.0
  robot = next(s for s in (w.generate(i, 32) for i in range(100)) if s.scene_class == names.index("robot"))
  person = next(s for s in (w.generate(i, 32) for i in range(100)) if s.scene_class == names.index("hat"))
  assert hits(np.stack([robot.labels, person.labels]), names.index("robot")).tolist() == [True, False]
  assert hits(np.stack([robot.labels, person.labels]), names.index("plain")).tolist() == [False, True]


def test_characters_render_a_layout_as_the_world_draws_it():
  """eval.py --render=world on characters: the world colours a (model's) part-label map with its own renderer."""
  from genenv_jax.scenes import characters as ch

  w = get_world("characters")
  sc = next(s for s in (w.generate(i, 32) for i in range(60)) if s.scene_class == 5)  # a robot
  a, b, c = w.render(sc.labels, None, seed=1), w.render(sc.labels, None, seed=1), w.render(sc.labels, None, seed=2)
  np.testing.assert_array_equal(a, b)
  assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and not np.array_equal(a, c)  # seeded palettes
  bg, light = a[sc.labels == ch.BACKGROUND].mean(0), a[sc.labels == ch.LIGHT].mean(0)
  assert bg.min() > 150 and np.abs(bg - light).max() > 40  # pale background; the lights stand out
