"""The bar a model trained on episodes must clear: the nearest-neighbour planner.

It answers the steps of the training window whose [start, goal, goal - start] features are the
closest by cosine similarity (training.tabletop.baselines.nearest_neighbour, the planner of the
tabletop difficulty table), over features flattened to vectors whatever their trailing shape
(a pooled vector or a token map). `planllm data episodes stats` prints it on val and test, and
the end-to-end test checks that the deployed model plans better.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from training.datasets.base import ProcedureDataset
from training.evaluation.metrics import procedure_metrics


def _flat(dataset: ProcedureDataset) -> ProcedureDataset:
    samples = [dataclasses.replace(s, start=s.start.reshape(-1).astype(np.float32),
                                   goal=s.goal.reshape(-1).astype(np.float32)) for s in dataset.samples]
    return dataclasses.replace(dataset, samples=samples)


def nearest_neighbour_plans(train: ProcedureDataset, test: ProcedureDataset) -> np.ndarray:
    """(len(test), T) step ids: each test window gets the steps of its nearest training window."""
    from training.tabletop.baselines import nearest_neighbour

    return nearest_neighbour(_flat(train), _flat(test))


def nearest_neighbour_metrics(train: ProcedureDataset, test: ProcedureDataset) -> dict[str, float]:
    """SR / mAcc / mIoU of the nearest-neighbour planner on `test`."""
    truth = np.stack([s.steps for s in test.samples])
    return procedure_metrics(nearest_neighbour_plans(train, test), truth)
