"""Does torchao's int8 dynamic-activation int8-weight path run here, and is it faster than torch.ao's?

Run: pip install torchao && python benchmarks/compress/torchao_probe.py BATCH   (BATCH sequences of 32 tokens)
One 384-1536-384 MLP (a MiniLM block's MLP) in float32, through torch.ao's dynamic int8 kernel
(`quantize_dynamic`: the kernel `polymodal.compress.int8` uses) and through torchao's
`quantize_(model, Int8DynamicActivationInt8WeightConfig())`, eager mode, 2 threads; prints the
minimum cosine of torchao's output to float32 and ms per pass (mean of 20 after 3 warm-up passes).
"""

from __future__ import annotations

import copy
import sys
import time

import torch
from torch import nn


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(384, 1536), nn.GELU(), nn.Linear(1536, 384)).eval()


def bench(model: nn.Module, x: torch.Tensor, n: int = 20) -> float:
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        t = time.perf_counter()
        for _ in range(n):
            model(x)
        return (time.perf_counter() - t) / n


def main() -> None:
    import torchao
    from torch.ao.quantization import quantize_dynamic
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    torch.manual_seed(0)
    torch.set_num_threads(2)
    print("torch", torch.__version__, "torchao", torchao.__version__)
    base = mlp()
    x = torch.randn(int(sys.argv[1]) * 32, 384)
    ao = copy.deepcopy(base)
    quantize_(ao, Int8DynamicActivationInt8WeightConfig())
    print("torchao weight type:", type(ao[0].weight).__name__)
    with torch.inference_mode():
        print("min cosine torchao vs fp32:", float(nn.functional.cosine_similarity(base(x), ao(x)).min()))
    qd = quantize_dynamic(copy.deepcopy(base), {nn.Linear}, dtype=torch.qint8)
    for name, model in (("fp32", base), ("torch.ao dynamic", qd), ("torchao int8dyn", ao)):
        print(f"{name}: {bench(model, x) * 1000:.1f} ms per {x.shape[0]}x384 through a 384-1536-384 MLP")


if __name__ == "__main__":
    main()
