"""Tiny PlanLLM model folders for the runtime and export tests (random weights, seconds to build)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from planllm_ros.model.config import PlanLLMConfig
from planllm_ros.model.planllm import PlanLLM
from training.train.stages import set_stage

LABELS = ["pick up the cup", "place the cup on the plate", "open the drawer", "close the drawer",
          "wipe the table", "put the sponge in the sink"]
TEXT_DIM = 384


# MobileNetV2's block-13 map: 196 tokens of 96 channels per image (the tabletop preset's input)
TOKEN_VISUAL = {"feature_dim": 96, "num_tokens": 196, "backbone": "mobilenet_v2", "layer": 13}


def tiny_config(planning: str = "fused", backbone: str | None = "mobilenet_v2", feature_dim: int = 1280,
                horizon: int = 3, tokens: bool = False) -> PlanLLMConfig:
    """tokens=False: the one-vector model (the backbone's last map pooled to one 1280-d token, or
    `feature_dim`-d dataset features); tokens=True: one token per location of block 13's map."""
    visual = dict(TOKEN_VISUAL) if tokens else {"feature_dim": feature_dim, "backbone": backbone, "pool_tokens": True}
    return PlanLLMConfig.from_dict({
        "horizon": horizon, "hidden_dim": 32, "dropout": 0.0,
        "visual": visual,
        "qformer": {"num_layers": 1, "num_heads": 2, "hidden_size": 32, "intermediate_size": 64, "dropout": 0.0},
        "llm": {"max_new_tokens": 12, "builtin": {"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                                                  "intermediate_size": 64, "vocab_size": 300},
                "lora": {"r": 2, "alpha": 4, "dropout": 0.0}},
        "heads": {"num_heads": 2, "ffn_mult": 2, "dropout": 0.0},
        "variant": {"planning": planning},
    })


def build_tiny_model(config: PlanLLMConfig | None = None, seed: int = 0, stage: int = 2) -> PlanLLM:
    """A randomly initialised tiny model; stage 2 switches LoRA on with non-zero adapters
    (as after training), so merging them changes the LLM's weights."""
    torch.manual_seed(seed)
    embeddings = torch.nn.functional.normalize(torch.randn(len(LABELS), TEXT_DIM), dim=-1)
    model = PlanLLM(config or tiny_config(), embeddings, LABELS)
    if stage == 2 and model.config.variant.use_llm:
        set_stage(model, 2)
        with torch.no_grad():
            for name, param in model.llm.model.named_parameters():
                if "lora_B" in name:
                    param.normal_(std=0.2)
    return model.eval()


def text_model(encoder, known: list[str], descriptions: list[str] | None = None) -> PlanLLM:
    """A tiny features-only model whose known steps are `known`, embedded by the real text
    encoder from `descriptions` (kept as the model's description texts) or their own labels:
    what open-vocabulary mapping tests compare candidate labels against."""
    torch.manual_seed(0)
    built = PlanLLM(tiny_config(backbone=None, feature_dim=8, horizon=2), encoder.encode(descriptions or known), known,
                    descriptions)
    built.attach_text_encoder(encoder)
    return built.eval()


def save_tiny_model(directory: Path, config: PlanLLMConfig | None = None, seed: int = 0,
                    transition: bool = True) -> Path:
    """save_pretrained + (optionally) a train transition matrix, like the trainer's OUT/model."""
    model = build_tiny_model(config, seed)
    model.save_pretrained(directory)
    if transition:
        rng = np.random.default_rng(seed)
        matrix = rng.random((len(LABELS), len(LABELS))) + 0.1
        matrix /= matrix.sum(axis=1, keepdims=True)
        save_file({"transition": torch.as_tensor(matrix, dtype=torch.float32)}, str(directory / "transition.safetensors"))
    return directory
