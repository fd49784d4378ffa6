"""Compression of saved models: int8 dynamic quantization, pruning, distillation (issue 12).

Each method returns a normal polymodal model carrying a recorded transform
(``models.transforms``) that rebuilds its changed layers before its weights load, so the
result saves with ``save_pretrained`` and loads with ``polymodal.load`` like any model.
``polymodal.compress.api.compress`` is what ``polymodal compress`` calls.
"""
