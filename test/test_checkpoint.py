"""training.train.checkpoint: exact round trips of weights and training state, atomic replacement,
and clear errors for missing or corrupt files (never unpickling anything)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from training.train.checkpoint import CheckpointError, decode_tree, encode_tree, load_checkpoint, save_checkpoint


def _train_steps(model: nn.Module, optimizer, scheduler, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 6, generator=generator)
        loss = model(x).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Dropout(0.2), nn.Linear(5, 3))
    optimizer = torch.optim.AdamW([{"params": model[0].parameters(), "lr": 1e-2},
                                   {"params": model[2].parameters(), "lr": 3e-3}])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler


def test_round_trip_resumes_training_exactly(tmp_path):
    model, optimizer, scheduler = _setup()
    _train_steps(model, optimizer, scheduler, 3, seed=1)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
             "progress": {"step": 3, "best": None, "score": float("inf")}}
    save_checkpoint(tmp_path / "ckpt", model.state_dict(), state, {"name": "unit"})

    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config == {"name": "unit"}
    assert loaded.state["progress"] == {"step": 3, "best": None, "score": float("inf")}
    assert isinstance(loaded.state["rng"]["python"], tuple)
    model2, optimizer2, scheduler2 = _setup()
    model2.load_state_dict(loaded.weights)
    optimizer2.load_state_dict(loaded.state["optimizer"])
    scheduler2.load_state_dict(loaded.state["scheduler"])
    torch.set_rng_state(loaded.state["rng"]["torch"])
    _train_steps(model2, optimizer2, scheduler2, 2, seed=2)
    torch.set_rng_state(state["rng"]["torch"])
    _train_steps(model, optimizer, scheduler, 2, seed=2)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert scheduler.get_last_lr() == scheduler2.get_last_lr()


def test_tree_codec_keeps_types():
    tree = {"a": (1, 2.5, "x"), 3: [None, True], "__odd": np.arange(4), "t": torch.ones(2, dtype=torch.int8)}
    tensors: dict[str, torch.Tensor] = {}
    back = decode_tree(encode_tree(tree, tensors), tensors)
    assert back["a"] == (1, 2.5, "x") and back[3] == [None, True]
    assert np.array_equal(back["__odd"], np.arange(4)) and torch.equal(back["t"], tree["t"])
    with pytest.raises(TypeError, match="cannot store a object"):
        encode_tree({"bad": object()}, {})


def test_replacing_a_checkpoint_is_atomic(tmp_path):
    target = tmp_path / "ckpt"
    save_checkpoint(target, {"w": torch.zeros(2)}, {"step": 1}, {})
    save_checkpoint(target, {"w": torch.ones(2)}, {"step": 2}, {})
    assert load_checkpoint(target).state == {"step": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    # A kill between "move the old one aside" and "move the new one in" leaves only the aside copy.
    (target).rename(tmp_path / ".old-ckpt")
    assert torch.equal(load_checkpoint(target).weights["w"], torch.ones(2))
    # A half-written temporary directory is never read.
    (tmp_path / ".tmp-ckpt").mkdir()
    (tmp_path / ".tmp-ckpt" / "state.json").write_text("{broken")
    assert load_checkpoint(target).state == {"step": 2}


def test_missing_and_corrupt_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing")
    target = tmp_path / "ckpt"
    save_checkpoint(target, {"w": torch.arange(1000.0)}, {"step": 1}, {})
    weights = target / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        load_checkpoint(target)
    torch.save({"w": torch.zeros(1)}, weights)  # a pickle where safetensors belongs is rejected, not loaded
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_checkpoint(target)
    (target / "state.json").unlink()
    with pytest.raises(CheckpointError, match="state.json"):
        load_checkpoint(target)
