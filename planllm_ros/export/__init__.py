"""Offline deployment tools: LoRA merge, ONNX export with parity checks, TensorRT engines, model cards."""
