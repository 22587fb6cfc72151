"""Export: NIR, ONNX and TorchScript, and the checks that read an export back."""
