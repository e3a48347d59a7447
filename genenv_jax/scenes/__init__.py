"""Procedural scene worlds: an explicit registry, no import side effects."""

from genenv_jax.scenes import base
from genenv_jax.scenes.caves import CavesWorld
from genenv_jax.scenes.characters import CharactersWorld
from genenv_jax.scenes.city import CityWorld
from genenv_jax.scenes.city_regions import CityRegionsWorld
from genenv_jax.scenes.dungeon import DungeonRegionsWorld, DungeonWorld
from genenv_jax.scenes.forest import ForestWorld
from genenv_jax.scenes.forest_regions import ForestRegionsWorld
from genenv_jax.scenes.interiors import InteriorsWorld
from genenv_jax.scenes.props import PropsWorld
from genenv_jax.scenes.terrain import TerrainWorld
from genenv_jax.scenes.terrain_regions import TerrainRegionsWorld

WORLDS = {
  "city": CityWorld,
  "city_regions": CityRegionsWorld,
  "terrain": TerrainWorld,
  "terrain_regions": TerrainRegionsWorld,
  "forest": ForestWorld,
  "forest_regions": ForestRegionsWorld,
  "characters": CharactersWorld,
  "dungeon": DungeonWorld,
  "dungeon_regions": DungeonRegionsWorld,
  "caves": CavesWorld,
  "props": PropsWorld,
  "interiors": InteriorsWorld,
}


def get_world(name: str) -> base.World:
  """Returns the world called ``name``, or a clear error listing the known ones."""
  if name not in WORLDS:
    raise ValueError(f"world {name!r}: unknown; known worlds are {sorted(WORLDS)}")
  return WORLDS[name]()


__all__ = ["WORLDS", "get_world", "base"]
