"""Validation runs the model once per batch: the training pass gives the losses and the step
logits, which the pipeline's decoding turns into plans. Those plans, and so its metrics, must
be the ones plan_batch, the path the robot runs, makes from the same val batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.graphs import TorchGraphs
from planllm_ros.model.pipeline import plan_batch
from training.evaluation.metrics import procedure_metrics
from training.train import trainer as trainer_module
from training.train.config import load_config
from training.train.stages import set_stage
from training.train.trainer import Trainer

pytestmark = pytest.mark.filterwarnings("ignore:llm.max_new_tokens=6 cuts captions")
SETS = ["data.train_samples=16", "data.eval_samples=24", "train.batch_size=8", "train.progress=false",
        "llm.max_new_tokens=6", "llm.builtin.pretrain_steps=0"]


def plan_batch_plans(trainer: Trainer) -> tuple[np.ndarray, np.ndarray]:
    """plan_batch's plans of the whole val split, and the ground truth."""
    model, plans, truth = trainer.model, [], []
    policy = DecodingPolicy.for_model(model, trainer.transition, method=trainer.config.train.decode, captions=False)
    for batch in trainer._batches(list(range(len(trainer.val_set))), trainer.val_set):
        plans.append(plan_batch(model, TorchGraphs(model), batch["start"], batch["goal"], policy).step_ids)
        truth.append(batch["steps"].numpy())
    return np.concatenate(plans), np.concatenate(truth)


@pytest.mark.parametrize("sets", [[], ["decoding.llm_weight=1.0"], ["train.decode=argmax"],
                                  ["variant.planning=llm_only"]],
                         ids=["fused-viterbi", "fused-reranked", "fused-argmax", "llm-only"])
def test_one_pass_validation_plans_what_plan_batch_plans(tmp_path, monkeypatch, sets):
    trainer = Trainer(load_config("tabletop-tiny", SETS + sets), tmp_path)
    model = trainer.model
    set_stage(model, 2)
    with torch.no_grad():  # adapters away from their zero init: the LLM's h must matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    passes, scored = [], []
    encode = model.encode_states
    monkeypatch.setattr(model, "encode_states", lambda *inputs: passes.append(1) or encode(*inputs))
    monkeypatch.setattr(trainer_module, "procedure_metrics",
                        lambda pred, gt: scored.append((pred, gt)) or procedure_metrics(pred, gt))
    values = trainer.validate()
    batches = -(-len(trainer.val_set) // trainer.config.train.batch_size)
    llm_only = model.config.variant.planning == "llm_only"
    assert len(passes) == batches * (2 if llm_only else 1)  # LLM-only plans from generated captions
    assert {"loss", "loss_asc", "loss_mim"} <= set(values) and np.isfinite(values["loss"])
    plans, truth = plan_batch_plans(trainer)
    (validated, validated_truth), = scored
    assert np.array_equal(validated, plans) and np.array_equal(validated_truth, truth)
    assert {k: values[k] for k in ("sr", "macc", "miou", "miou_set")} == procedure_metrics(plans, truth)
