"""Export of polymodal models to other runtimes: ONNX graphs run by onnxruntime (issue 12.2)."""
