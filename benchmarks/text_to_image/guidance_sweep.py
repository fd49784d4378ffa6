"""Guidance / DDIM-steps sweep of a text-to-image model on the VAL split, so the setting is chosen there and not on
test. Usage: python benchmarks/text_to_image/guidance_sweep.py MODEL MANIFEST JUDGE (docs/examples.md section 10)."""

import sys
import time

import polymodal
from polymodal.tasks import evaluate

model_path, manifest, judge = sys.argv[1:4]
model = polymodal.load(model_path)
for g, steps in [(0.0, 25), (1.5, 25), (2.0, 25), (2.5, 25), (3.0, 25), (5.0, 25), (7.5, 25), (1.5, 10), (1.5, 50),
                 (2.0, 50), (3.0, 50)]:
    t = time.time()
    r = evaluate(model, "text-to-image", manifest, split="val", judge=judge,
                 limit=64, steps=steps, guidance_scale=g, cache=False)
    v = {k: float(getattr(x, "value", x)) for k, x in r.metrics.items()}
    print(f"guidance {g} steps {steps}: single {v['single/attribute_accuracy']:.3f} seen "
          f"{v['single/seen/attribute_accuracy']:.3f} held-out {v['single/heldout/attribute_accuracy']:.3f} "
          f"relation-prompts {v['relation/attribute_accuracy']:.3f} ({time.time() - t:.0f} s)", flush=True)
