import pytest
import torch
from accelerate import Accelerator
from helpers import Result
from sklearn.metrics import f1_score

from polymodal.models.outputs import ClassifierOutput, EmbeddingOutput
from polymodal.train.evaluation import evaluate


class TwoHeads(torch.nn.Module):
    """Fixed logits: head "a" predicts x[:, :3], head "b" predicts x[:, 3:]."""

    def forward(self, batch):
        x = batch["x"]
        return ClassifierOutput({"a": x[:, :3], "b": x[:, 3:]})


class _Objective:
    validation = ("classification",)  # what the trainer measures beyond the loss

    def __call__(self, out, batch):
        return Result(torch.nn.functional.cross_entropy(out.logits["a"], batch["a"]))


_objective = _Objective()


def test_multitask_metrics_per_column_match_sklearn():
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        x = torch.randn(10, 5, generator=g)
        batches.append({"id": [str(i) for i in range(10)], "x": x,
                        "a": torch.randint(0, 3, (10,), generator=g), "b": torch.randint(0, 2, (10,), generator=g)})
    m = evaluate(TwoHeads(), _objective, batches, Accelerator(cpu=True), ["a", "b"])
    xa = torch.cat([b["x"] for b in batches])
    for col, sl in (("a", slice(0, 3)), ("b", slice(3, 5))):
        y = torch.cat([b[col] for b in batches]).numpy()
        hat = xa[:, sl].argmax(1).numpy()
        assert m[f"val/{col}/accuracy"] == pytest.approx((hat == y).mean())
        assert m[f"val/{col}/macro_f1"] == pytest.approx(f1_score(y, hat, average="macro"))
    assert m["val/accuracy"] == pytest.approx((m["val/a/accuracy"] + m["val/b/accuracy"]) / 2)
    expect = sum(float(_objective(TwoHeads()(b), b).loss) * 10 for b in batches) / 30
    assert m["val/loss"] == pytest.approx(expect)


def test_in_batch_recall_counts_both_directions():
    class Fixed(torch.nn.Module):
        def forward(self, batch):
            img = torch.eye(4)
            txt = torch.eye(4)[[0, 1, 3, 2]]  # rows 2 and 3 swapped: half the pairs are wrong
            return EmbeddingOutput({"image": img, "text": txt})

    class NoLoss:
        validation = ("retrieval",)

        def __call__(self, out, batch):
            return Result(torch.tensor(0.0))

    m = evaluate(Fixed(), NoLoss(), [{"id": list("abcd")}],
                 Accelerator(cpu=True), [])
    assert m["val/recall@1"] == pytest.approx(0.5)
