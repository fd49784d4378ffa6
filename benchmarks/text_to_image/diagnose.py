"""Where a trained text-to-image model fails: conditioning, the sampling chain, the samples.

(a) the training loss per timestep bucket with each row's own caption vs. a caption of another colour and
    shape (a model that uses the text does worse with the wrong one; at which noise levels?);
(b) real test images noised to t = 300 / 600 / 900 and denoised by DDIM from there with their captions:
    what the judge reads (does the chain keep, or find, the right scene from each noise level?);
(c) samples from pure noise: the judge's reading and pixel statistics (grey noise has a small spread
    between images and a large one inside each).

    python benchmarks/text_to_image/diagnose.py runs/t2i/model data/shapes/manifest.jsonl runs/shapes-judge
    # a checkpoint of a run still training: its weights in the run's config.yaml's model
    python benchmarks/text_to_image/diagnose.py runs/t2i/checkpoints/step-00000300 ... --only-losses
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import polymodal
from polymodal.tasks.shapes_judge import judge_slots, scene_targets

BUCKETS = ((0, 200), (200, 400), (400, 600), (600, 800), (800, 1000))


def wrong_captions(rows: list[dict[str, Any]]) -> list[str]:
    """Each row gets the caption of the next row naming a different colour and a different shape."""
    out = []
    for i, row in enumerate(rows):
        for k in range(1, len(rows)):
            other = rows[(i + k) % len(rows)]
            if other["color"] != row["color"] and other["shape"] != row["shape"]:
                out.append(str(other["text"]))
                break
        else:
            raise SystemExit("diagnose: the rows need at least two colours and shapes")
    return out


def load_any(path: Path) -> Any:
    """A saved model folder, or a training checkpoint (``RUN/checkpoints/step-N``) read into its run's model."""
    if not (path / "state.json").exists():
        return polymodal.load(path)
    from polymodal.config import load_config
    from polymodal.models import build_model
    from polymodal.train.checkpoint import load_checkpoint

    model = build_model(load_config(path.parent.parent / "config.yaml").model)
    load_checkpoint(path, model)
    return model


def bucket_losses(model: Any, clean: torch.Tensor, texts: list[str], seed: int) -> list[float]:
    tokens, mask = model.condition(model.text_tower.preprocess(texts))
    sched = model.scheduler()
    generator = torch.Generator().manual_seed(seed)
    out = []
    for lo, hi in BUCKETS:
        noise = torch.randn(clean.shape, generator=generator)
        steps = torch.randint(lo, hi, (clean.shape[0],), generator=generator)
        target = model.training_target(sched, clean, noise, steps)
        pred = model.denoise(sched.add_noise(clean, noise, steps), steps, tokens, mask)
        out.append(float(((pred - target) ** 2).mean()))
    return out


def judged(judge: Any, images: list[Image.Image], rows: list[dict[str, Any]]) -> float:
    slots = np.array([judge_slots(p, scene_targets(r)) for p, r in zip(judge.predict(images), rows, strict=True)])
    return float(slots[:, 0].sum() / slots[:, 1].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("judge", type=Path)
    parser.add_argument("--n", type=int, default=48, help="single-object test rows")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps over the whole schedule")
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--only-losses", action="store_true", help="(a) only: seconds, not minutes")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_any(args.model)
    model.eval()
    judge = polymodal.load(args.judge)
    rows = [json.loads(line) for line in args.manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == "test" and len(r["objects"]) == 1][: args.n]
    texts = [str(r["text"]) for r in rows]
    images = [Image.open(args.manifest.parent / r["image"]).convert("RGB") for r in rows]
    clean = model.fold(model.pixels(images))
    scale = model.spec.guidance_scale if args.guidance is None else args.guidance
    print(f"model {args.model}: prediction_type={model.spec.prediction_type} pooled={model.spec.pooled_condition} "
          f"guidance={scale} steps={args.steps} rows={len(rows)}")
    with torch.inference_mode():
        right = bucket_losses(model, clean, texts, seed=1)
        wrong = bucket_losses(model, clean, wrong_captions(rows), seed=1)
        print("(a) loss per timestep bucket, own caption vs. another colour+shape's:")
        for (lo, hi), a, b in zip(BUCKETS, right, wrong, strict=True):
            print(f"    t in [{lo:4d}, {hi:4d}): own {a:.4f}  wrong {b:.4f}  ratio {b / max(a, 1e-12):.2f}")
        if args.only_losses:
            return
        tokens, mask = model.condition(model.text_tower.preprocess(texts))
        print(f"(b) judge on real test images: {judged(judge, images, rows):.3f}")
        timesteps = model.sampling_timesteps(args.steps)
        generator = torch.Generator().manual_seed(2)
        for start in (300, 600, 900):
            first = int(next(t for t in timesteps if int(t) <= start))
            noise = torch.randn(clean.shape, generator=generator)
            noisy = model.scheduler().add_noise(clean, noise, torch.full((clean.shape[0],), first))
            redrawn = model.to_images(model.sample_folded(noisy, tokens, mask, args.steps, scale, start=start))
            # the same noise level redrawn with the wrong caption: does the text steer the chain from here?
            w_tokens, w_mask = model.condition(model.text_tower.preprocess(wrong_captions(rows)))
            steered = model.to_images(model.sample_folded(noisy, w_tokens, w_mask, args.steps, scale, start=start))
            print(f"    noised to t={first}, DDIM back: judge {judged(judge, redrawn, rows):.3f} with own caption, "
                  f"{judged(judge, steered, rows):.3f} (of the ORIGINAL scene) with a wrong one")
    samples = model.generate(texts, steps=args.steps, guidance_scale=scale, seed=0)
    arrays = np.stack([np.asarray(im, dtype=np.float64) for im in samples])
    real = np.stack([np.asarray(im.resize(samples[0].size), dtype=np.float64) for im in images])
    print(f"(c) samples from noise: judge {judged(judge, samples, rows):.3f}")
    for name, a in (("samples", arrays), ("real", real)):
        print(f"    {name}: mean {a.mean():.1f}, std inside an image {a.std(axis=(1, 2)).mean():.1f}, "
              f"std of image means {a.mean(axis=(1, 2)).std(axis=0).mean():.1f}, "
              f"neighbour-pixel |diff| {np.abs(np.diff(a, axis=2)).mean():.1f}")


if __name__ == "__main__":
    main()
