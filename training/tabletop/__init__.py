"""The embedded default domain: a procedural tabletop world with rendered start and goal images.

Runs anywhere, offline, on two CPU cores. Public entry points:
- `load_tabletop(split, horizon, seed=0, num_samples=None, observation="features"|"images", cache_dir=None)`
  -> ProcedureDataset (splits: train, val, test, novel, paraphrase, paraphrase-val);
- `scenario(task=None, seed=0)` -> Scenario: one rendered episode (start, every intermediate
  state, goal) with its true step ids and labels, for the ROS demo source;
- `vocabulary()`, `descriptions()`, `write_descriptions_json(path)`: steps, tasks and their
  SCHEMA-style descriptions.
"""
from training.tabletop.dataset import (
    DEFAULT_SAMPLES,
    SPLITS,
    Scenario,
    descriptions,
    load_tabletop,
    scenario,
    vocabulary,
    write_descriptions_json,
)

__all__ = ["DEFAULT_SAMPLES", "SPLITS", "Scenario", "descriptions", "load_tabletop", "scenario", "vocabulary",
           "write_descriptions_json"]
