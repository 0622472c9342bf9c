"""Models in, hardware out: networks trained elsewhere (ONNX, PyTorch) imported for the chip,
and the bundle a lab bench or firmware needs exported from a config."""
__all__: list[str] = []
