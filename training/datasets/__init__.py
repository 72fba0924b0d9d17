"""Procedure-planning datasets: the benchmark loaders (CrossTask, COIN, NIV) and shared types.

Every dataset yields `Sample`s over one `StepVocabulary`; the tabletop world (training.tabletop)
produces the same types, so the trainer and evaluation never care where samples came from.
"""
from training.datasets.base import (
    DatasetError,
    ProcedureDataset,
    Sample,
    StepDescription,
    StepVocabulary,
    collate,
    transition_matrix,
)

__all__ = [
    "DatasetError",
    "ProcedureDataset",
    "Sample",
    "StepDescription",
    "StepVocabulary",
    "collate",
    "transition_matrix",
]
