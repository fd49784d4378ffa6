"""polymodal: align, fine-tune, evaluate and compare multimodal models."""
__version__ = "0.1.0"
