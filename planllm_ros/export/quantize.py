"""Static int8 quantization of the exported backbone graph (ONNX Runtime, QDQ format).

The frozen image backbone is most of a plan's CPU time, and it is all convolutions, which
int8 kernels run several times faster than float32. Static quantization fixes each
activation's scale from calibration images (training images of the model's own domain)
instead of measuring it at every call. Weights are quantized per output channel (symmetric
int8), activations per tensor (uint8) with the 99.999th percentile as their range (fewer
outliers stretch the scale than with min/max: on the tabletop backbone the mean error of the
block-13 tokens drops from 19 % to 18 % of their mean magnitude). The first convolution stays
float: it reads normalised pixels, the input int8 represents worst (17.5 % with it float).
The graph stays float at its input and output, so the runtime feeds it exactly as before; how
much the plans change is measured, not assumed (`planllm eval --backend onnxruntime` on val
images, recorded in the model card). Whether int8 is faster depends on the CPU's int8
instructions: measure it with `planllm bench latency`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from planllm_ros.model.backbone import input_spec, preprocess
from planllm_ros.model.folder import onnx_path
from planllm_ros.model.graphs import BACKBONE


class _Images:
    """onnxruntime's CalibrationDataReader over preprocessed images, one at a time."""

    def __init__(self, batches: list[np.ndarray]):
        self.batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {"images": batch}

    def rewind(self) -> None:  # onnxruntime may call it between calibration passes
        raise RuntimeError("calibration data is read once")


def quantize_backbone(model, model_dir: str | Path, images: np.ndarray) -> dict[str, object]:
    """Replace onnx/backbone.onnx in `model_dir` by its int8 version calibrated on `images`
    (uint8 (N, H, W, 3)); returns what was done, for the model card."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"calibration images must be uint8 (N, H, W, 3) with N >= 1, got {images.shape} {images.dtype}")
    visual = model.config.visual
    spec = input_spec(visual.backbone, visual.open_clip_model)
    batches = [preprocess(torch.from_numpy(image), *spec).numpy() for image in images]
    path = onnx_path(model_dir, BACKBONE)
    prepared = path.with_name(f"{path.stem}.prepared{os.getpid()}.onnx")
    quantized = path.with_name(f"{path.stem}.int8{os.getpid()}.onnx")
    try:
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        first_conv = next(n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv")
        quantize_static(str(prepared), str(quantized), _Images(batches), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=[first_conv])
        os.replace(quantized, path)
    finally:
        for leftover in (prepared, quantized):
            leftover.unlink(missing_ok=True)
    return {"graphs": [BACKBONE], "format": "QDQ, int8 weights per channel, uint8 activations (99.999th "
            "percentile ranges), first convolution float",
            "calibration_images": int(len(images))}
