"""The training loop on HF Accelerate, built for exact resume.

Why the loop owns gradient accumulation instead of ``accelerator.accumulate``: exact resume
needs the optimizer-step boundaries to be a pure function of (epoch, position), and the
data order to come from our own (seed, epoch) plan; Accelerate's accumulate counts steps in
a private counter tied to its own dataloader wrapper. We use its other parts as they are:
``prepare`` (DDP / device placement / mixed precision), ``no_sync`` on the micro-steps,
``backward`` (grad scaler), ``clip_grad_norm_``, ``reduce`` / ``gather`` for metrics.

Checkpoints are taken only at optimizer-step boundaries. A kill in the middle of an
accumulation replays the micro-steps from the last boundary: since data order and RNG state
are restored, the replay is bit for bit what the first attempt computed.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from polymodal.config import RunConfig
from polymodal.errors import TrainingError
from polymodal.models.towers import move
from polymodal.runtime.precision import PrecisionDecision
from polymodal.train import checkpoint as ckpt
from polymodal.train import order
from polymodal.train import resume as resume_rules
from polymodal.train.callbacks import EarlyStopping, MetricsLog
from polymodal.train.evaluation import evaluate
from polymodal.train.optim import build_optimizer, build_scheduler
from polymodal.train.progress import ProgressBar
from polymodal.train.strategies import StrategyReport, set_train_mode


@dataclass
class DataSplit:
    """A map-style dataset plus the collate function that turns its samples into a Batch."""

    dataset: Any
    collate: Callable[[list[Any]], dict[str, Any]]
    num_workers: int = 0


@dataclass
class TrainResult:
    run_dir: Path
    best_metric: float | None
    final_metrics: dict[str, float]
    steps: int
    best_step: int | None = None
    stopped_early: bool = False
    interrupted: bool = False
    strategy: StrategyReport | None = None
    skipped_ids: list[str] = field(default_factory=list)
    main_process: bool = True
    selection_metric: str = "val/loss"
    quarantined: int = 0  # rows in the run's quarantine file (validation + loading)
    quarantine_file: Path | None = None


def _objective_params(objective: Any, model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Learnable parameters that live in the objective only (uncertainty task weights...)."""
    if not isinstance(objective, torch.nn.Module):
        return []
    in_model = {id(p) for p in model.parameters()}
    return [p for p in objective.parameters() if p.requires_grad and id(p) not in in_model]


def _objective_state(objective: Any) -> dict[str, torch.Tensor]:
    """The objective's own learnable tensors (a distillation teacher's frozen weights are not state)."""
    if not isinstance(objective, torch.nn.Module):
        return {}
    return {k: p.detach() for k, p in objective.named_parameters() if p.requires_grad}


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """``train.deterministic``: PyTorch's deterministic algorithms while the block runs, then the
    caller's settings back. An op with no deterministic implementation raises (never warn-only):
    the run fails loudly with a ``TrainingError`` naming it instead of silently varying."""
    if not enabled:
        yield
        return
    if torch.cuda.is_available():  # cuBLAS needs a fixed workspace for reproducible matmuls
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    except RuntimeError as exc:
        if "use_deterministic_algorithms" not in str(exc):
            raise
        first = str(exc).strip().splitlines()[0]
        raise TrainingError(f"train.deterministic: {first} -- this model uses an op with no deterministic "
                            "implementation here; set train.deterministic: false to run it") from exc
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn


def _fault_point() -> tuple[int, int] | None:
    """Test-only fault injection (``POLYMODAL_FAULT=STEP:MICRO``): SIGKILL ourselves right after
    micro-step MICRO of optimizer step STEP. It lets the resume tests kill at an exact point."""
    spec = os.environ.get("POLYMODAL_FAULT")
    if not spec:
        return None
    step, _, micro = spec.partition(":")
    return int(step), int(micro or 0)


class Trainer:
    """One run: model + objective + data + config -> run dir with checkpoints and metrics."""

    def __init__(self, cfg: RunConfig, model: torch.nn.Module, objective: Callable[[Any, Any], Any],
                 train_data: DataSplit, val_data: DataSplit | None, run_dir: str | Path,
                 strategy: StrategyReport, fingerprint: dict[str, Any], label_columns: list[str],
                 accelerator: Any, export: Callable[[torch.nn.Module, Path], None] | None = None,
                 precision: PrecisionDecision | None = None) -> None:
        self.cfg, self.tc = cfg, cfg.train
        self.acc = accelerator
        self.raw_model = model
        self.objective = objective
        self.train_data, self.val_data = train_data, val_data
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.strategy = strategy
        self.fingerprint = fingerprint
        self.label_columns = label_columns
        self.export = export
        self.precision = precision
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.main = accelerator.is_main_process
        bs = cfg.data.batch_size
        if bs % self.world:
            raise TrainingError(f"data.batch_size {bs} must be divisible by the {self.world} processes")
        n_batches = len(train_data.dataset) // bs
        if n_batches == 0:
            raise TrainingError(f"the train split has {len(train_data.dataset)} rows, fewer than one batch of {bs}")
        self.steps_per_epoch = -(-n_batches // self.tc.grad_accum)
        self.epoch = self.step_in_epoch = self.global_step = self.samples = 0
        # rows of the current epoch's order consumed before its step 0 (non-zero only after a
        # forced resume with another batch size: the epoch goes on from the same row)
        self._epoch_offset = 0
        self.total_steps = self._planned_total()
        self.objective_params = _objective_params(objective, model)
        self.optimizer = build_optimizer(model, self.tc, self.objective_params)
        self.scheduler = build_scheduler(self.optimizer, self.tc, self.total_steps)
        self.model, self.optimizer = accelerator.prepare(model, self.optimizer)
        self.params = [p for p in model.parameters() if p.requires_grad] + self.objective_params
        metric = self.tc.early_stopping_metric or "val/loss"
        mode = self.tc.early_stopping_mode if self.tc.early_stopping_metric else "min"
        self.early = EarlyStopping(metric, mode, self.tc.patience, self.tc.min_delta)
        self.log = MetricsLog(self.run_dir, enabled=self.main)
        self.best_path: Path | None = None
        self.skipped_ids: list[str] = []
        self.skipped_steps = self.consecutive_skips = 0
        self._term = False
        self.last_val: dict[str, float] = {}
        self.last_saved_step = -1
        self._resume_order: tuple[int, list[int]] | None = None
        self._lengths: list[int] | None = None
        self._order_cache: tuple[int, list[int]] | None = None
        if cfg.data.length_bucketing:
            column = cfg.data.columns.get("text", "text")
            self._lengths = order.text_lengths(train_data.dataset, column)
            if self._lengths is None:
                raise TrainingError(f"data.length_bucketing needs text: the train rows have no {column!r} column")

    def _planned_total(self) -> int:
        """Optimizer steps of the whole run: those left in this epoch from its position, then whole epochs."""
        if self.epoch >= self.tc.epochs:
            return self.global_step
        bs = self.cfg.data.batch_size
        rows_left = max(len(self.train_data.dataset) - self._epoch_offset, 0)
        in_epoch = -(-(rows_left // bs) // self.tc.grad_accum)
        total = self.global_step + max(in_epoch - self.step_in_epoch, 0) + \
            self.steps_per_epoch * (self.tc.epochs - self.epoch - 1)
        return min(total, self.tc.max_steps) if self.tc.max_steps else total

    # ------------------------------------------------------------ state
    def _state(self) -> dict[str, Any]:
        rngs = ckpt.rng_state()
        if self.world > 1:  # every process has its own dropout stream
            from accelerate.utils import gather_object

            rngs_all = gather_object([rngs])
        else:
            rngs_all = [rngs]
        scaler = getattr(self.acc, "scaler", None)
        return {
            "trainer": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                        "global_step": self.global_step, "samples": self.samples,
                        "early": self.early.state_dict(), "skipped_ids": self.skipped_ids,
                        "skipped_steps": self.skipped_steps, "consecutive_skips": self.consecutive_skips,
                        "epoch_offset": self._epoch_offset, "total_steps": self.total_steps,
                        "best_path": self.best_path.name if self.best_path else None,
                        "last_val": self.last_val, "world": self.world},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rngs_all,
            "data_order": torch.tensor(self._epoch_order(self.epoch), dtype=torch.int64),
            "fingerprint": self.fingerprint,
            "objective": _objective_state(self.objective),
        }

    def save(self) -> Path | None:
        state = self._state()  # collective under multi-process: every rank takes part
        path = None
        if self.main:
            path = ckpt.save_checkpoint(self.ckpt_dir, self.global_step, self.acc.unwrap_model(self.model), state)
            ckpt.prune(self.ckpt_dir, self.tc.keep_last, {self.best_path} if self.best_path else None)
        self.last_saved_step = self.global_step
        self.acc.wait_for_everyone()
        return path

    def resume_from(self, path: Path, force: bool) -> None:
        try:
            state = ckpt.load_checkpoint(path, self.acc.unwrap_model(self.model))
        except TrainingError as err:  # weights that do not fit: say which settings changed, if any
            changes = resume_rules.compare(resume_rules.read_settings(path) or {}, self.fingerprint)
            if not changes:
                raise
            raise TrainingError(f"cannot resume from {path}: {resume_rules.describe(changes)}; {err}") from None
        t = state["trainer"]
        saved = state.get("fingerprint", {})
        changes = resume_rules.compare(saved, self.fingerprint)
        honest = resume_rules.honest_length_keys(changes, self.tc, t.get("total_steps"), self.total_steps,
                                                 t["global_step"])
        refused = {k: v for k, v in changes.items() if k not in honest}
        if refused and not force:
            raise TrainingError(
                f"cannot resume from {path}: settings differ from the checkpoint's and would not be honoured: "
                f"{resume_rules.describe(refused)}. Resume with the checkpoint's values, or pass --force to "
                f"apply the new ones from step {t['global_step']} on (recorded in metrics.jsonl and config.yaml)"
            )
        self.epoch, self.step_in_epoch = t["epoch"], t["step_in_epoch"]
        self.global_step, self.samples = t["global_step"], t["samples"]
        self._epoch_offset = int(t.get("epoch_offset", 0))
        if resume_rules.moves_position(changes):
            # another batch size / accumulation: go on from the same row of the epoch, not the same step
            self._epoch_offset, self.step_in_epoch = resume_rules.rows_done(saved, t), 0
        reset_optimizer = bool(refused) and resume_rules.changes_parameters(refused)
        if changes:  # the new settings apply from here: the run's length and lr schedule follow them
            self.total_steps = self._planned_total()
            # on the bare optimizer, as in __init__ (Accelerate's wrapper forwards param_groups to it)
            self.scheduler = build_scheduler(getattr(self.optimizer, "optimizer", self.optimizer), self.tc,
                                             self.total_steps)
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        if isinstance(self.objective, torch.nn.Module) and state.get("objective"):
            self.objective.load_state_dict(state["objective"], strict=False)
        if not reset_optimizer:
            try:
                self.optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as exc:
                raise TrainingError(f"cannot resume from {path}: its optimizer state does not fit the "
                                    f"parameters this config trains ({exc})") from None
        self.scheduler.load_state_dict(state["scheduler"])
        if changes:
            resume_rules.apply_hyperparameters(self.optimizer, self.scheduler, fresh)
        scaler = getattr(self.acc, "scaler", None)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        self.early.load_state_dict(t["early"])
        self.skipped_ids = list(t["skipped_ids"])
        self.skipped_steps = int(t.get("skipped_steps", 0))
        self.consecutive_skips = int(t.get("consecutive_skips", 0))
        self.last_val = dict(t["last_val"])
        self.best_path = self.ckpt_dir / t["best_path"] if t["best_path"] else None
        rngs = state["rng"]
        ckpt.set_rng_state(rngs[self.rank] if self.rank < len(rngs) else rngs[0])
        self.last_saved_step = self.global_step
        # the resumed epoch replays the saved order itself (robust to RNG changes across torch versions)
        saved_order = state.get("data_order")
        if saved_order is not None and len(saved_order) == len(self.train_data.dataset) \
                and "data.rows" not in changes:
            self._resume_order = (self.epoch, saved_order.tolist())
        self.log.truncate_after(self.global_step)
        record: dict[str, Any] = {"checkpoint": path.name}
        if changes:
            record.update(changed={k: list(v) for k, v in changes.items()}, forced=bool(refused),
                          optimizer_state="reset" if reset_optimizer else "restored", steps=self.total_steps)
        self.log.log("resume", self.global_step, record)
        if self.main:
            how = "with --force" if refused else "(a longer or shorter run on the same schedule)"
            entry = f"step {self.global_step}: resumed from {path.name} {how}: {resume_rules.describe(changes)}" \
                if changes else None
            resume_rules.write_config(self.run_dir / "config.yaml", self.cfg, entry)

    # ------------------------------------------------------------ data
    def _epoch_order(self, epoch: int) -> list[int]:
        if self._resume_order is not None and self._resume_order[0] == epoch:
            return self._resume_order[1]
        if self._order_cache is None or self._order_cache[0] != epoch:  # saved at every checkpoint
            if self._lengths is not None:
                perm = order.bucketed_order(self._lengths, self.cfg.data.batch_size, self.tc.seed, epoch)
            else:
                perm = order.epoch_permutation(len(self.train_data.dataset), self.tc.seed, epoch)
            self._order_cache = (epoch, perm)
        return self._order_cache[1]

    def _loader(self, split: DataSplit, batches: list[list[int]], seed: int) -> DataLoader:
        # a private generator: building the iterator must not draw from the global RNG
        return DataLoader(split.dataset, batch_sampler=order.ListBatchSampler(batches),  # type: ignore[arg-type]
                          collate_fn=split.collate, num_workers=split.num_workers,
                          generator=torch.Generator().manual_seed(seed))

    def _val_batches(self) -> Iterator[dict[str, Any]]:
        assert self.val_data is not None
        bs = self.cfg.data.eval_batch_size or self.cfg.data.batch_size
        bs = max(self.world, bs - bs % self.world)
        batches = order.global_batches(list(range(len(self.val_data.dataset))), bs, drop_last=False)
        # the last batch is trimmed to a multiple of the process count so shards stay equal
        batches = [b[: len(b) - len(b) % self.world] for b in batches]
        local = [order.shard(b, self.rank, self.world) for b in batches if b]
        for batch in self._loader(self.val_data, local, self.tc.seed):
            yield move(batch, self.acc.device)

    def run_eval(self) -> dict[str, float]:
        if self.val_data is None or len(self.val_data.dataset) < self.world:
            return {}
        # evaluation must not move the training RNG streams, or resume could not be exact
        saved = ckpt.rng_state()
        self.model.eval()
        try:
            metrics = evaluate(self.acc.unwrap_model(self.model), self.objective, self._val_batches(),
                               self.acc, self.label_columns)
        finally:
            ckpt.set_rng_state(saved)
            set_train_mode(self.model, self.strategy)
        self.last_val = metrics
        self.log.log("eval", self.global_step, {"epoch": self.epoch, **metrics})
        value = metrics.get(self.early.metric)
        if value is None:
            raise TrainingError(f"early-stopping metric {self.early.metric!r} is not among {sorted(metrics)}")
        was_best = self.early.best
        # a non-finite value never becomes the best (it counts as an evaluation without improvement)
        self.early.update(value if math.isfinite(value) else float("nan"), self.global_step)
        if self.early.best != was_best:
            self.best_path = ckpt.step_dir(self.ckpt_dir, self.global_step)
            self.save()
        return metrics

    # ------------------------------------------------------------ one optimizer step
    def _step(self, micro: Iterator[dict[str, Any]], n_micro: int, fault: tuple[int, int] | None) -> float:
        losses, ids = [], []
        step_metrics: dict[str, list[torch.Tensor]] = {}
        for i in range(n_micro):
            batch = move(next(micro), self.acc.device)
            sync = contextlib.nullcontext() if i == n_micro - 1 else self.acc.no_sync(self.model)
            with sync:
                with self.acc.autocast():
                    res = self.objective(self.model(batch), batch)
                self.acc.backward(res.loss / n_micro)
            losses.append(res.loss.detach().float())
            for key, value in res.metrics.items():  # tensors: read only when logged (no sync per step)
                step_metrics.setdefault(key, []).append(value.detach().float())
            ids += list(batch["id"])
            self.samples += len(batch["id"]) * self.world
            if fault == (self.global_step + 1, i):
                os.kill(os.getpid(), signal.SIGKILL)
        self._step_metrics = {k: torch.stack(v).mean() for k, v in step_metrics.items()}
        norm = self.acc.clip_grad_norm_(self.params, self.tc.max_grad_norm or float("inf"))
        loss = torch.stack(losses).mean()
        bad = not torch.isfinite(loss).item()
        if getattr(self.acc, "scaler", None) is None and norm is not None:
            bad = bad or not torch.isfinite(torch.as_tensor(norm)).item()
        if self.world > 1:
            flags = self.acc.reduce(torch.tensor([float(bad), loss.item()], device=self.acc.device), "sum")
            bad, loss = bool(flags[0] > 0), flags[1] / self.world
        if bad:
            self.optimizer.zero_grad(set_to_none=True)
            self._on_nan(ids)
        else:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.consecutive_skips = 0
            self._check_weights()
        self.scheduler.step()
        return float(loss)

    def _nonfinite_parameters(self) -> list[str]:
        model = self.acc.unwrap_model(self.model)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if isinstance(self.objective, torch.nn.Module):
            named += [(f"objective.{n}", p) for n, p in self.objective.named_parameters() if p.requires_grad]
        if not named:
            return []
        # one host sync per step. A tensor's sum is finite whenever all its elements are (a NaN or
        # inf element always makes it NaN/inf), and a sum reads the tensor once: several times
        # cheaper than isfinite().all() on a CPU. Only a non-finite sum (or the rare overflow of
        # huge finite weights) takes the exact per-element pass below, which names the tensors.
        with torch.no_grad():
            sums = torch.stack([p.detach().sum(dtype=torch.float32) for _, p in named])
        if bool(torch.isfinite(sums).all()):
            return []
        return [n for n, p in named if not bool(torch.isfinite(p).all())]

    def _check_weights(self) -> None:
        """Non-finite weights after an applied step cannot be skipped away: halt without saving them.

        Every checkpoint is taken after this check, so the newest complete one has finite weights.
        """
        bad = self._nonfinite_parameters()
        if not bad:
            return
        step = self.global_step + 1
        self.log.log("nan", step, {"policy": "halt", "weights": bad[:20]})
        good = ckpt.latest_complete(self.ckpt_dir)
        where = (f"the newest checkpoint, {good.name}, has finite weights: continue from it with, e.g., a lower "
                 f"lr (--resume --force --set train.lr=...)" if good is not None else
                 "no checkpoint was written before it: start over, e.g. with a lower train.lr")
        raise TrainingError(f"non-finite weights after optimizer step {step} ({len(bad)} tensors, e.g. "
                            f"{', '.join(bad[:3])}; train.lr={self.tc.lr} too high?); nothing was saved from "
                            f"this state; {where}")

    def _on_nan(self, ids: list[str]) -> None:
        if self.world > 1:
            from accelerate.utils import gather_object

            ids = [i for part in gather_object([ids]) for i in part]
        step = self.global_step + 1
        self.skipped_steps += 1
        self.consecutive_skips += 1
        self.log.log("nan", step, {"policy": self.tc.on_nan, "ids": ids, "skipped_steps": self.skipped_steps,
                                   "consecutive": self.consecutive_skips})
        self.skipped_ids += ids
        why = self._skip_limit_reached()
        if self.tc.on_nan == "halt" or why:
            # saved at the boundary before this step (the weights of the last applied step, checked
            # finite), with its counts undone: a resume runs this step again and counts it then
            self.skipped_steps, self.consecutive_skips = self.skipped_steps - 1, self.consecutive_skips - 1
            self.samples -= len(ids)
            del self.skipped_ids[len(self.skipped_ids) - len(ids):]
            self.save()
            if self.main:
                (self.run_dir / "nan_ids.json").write_text("\n".join(ids) + "\n", encoding="utf-8")
            policy = why or "policy halt"
            best = f"; the best checkpoint so far is {self.best_path.name}" if self.best_path else ""
            raise TrainingError(
                f"halted: non-finite loss or gradients at step {step} ({policy}); checkpoint written to "
                f"{self.ckpt_dir}{best}; sample ids in {self.run_dir / 'nan_ids.json'}: {ids[:8]}"
            )

    def _skip_limit_reached(self) -> str | None:
        tc = self.tc
        if tc.nan_max_consecutive is not None and self.consecutive_skips >= tc.nan_max_consecutive:
            return (f"{self.consecutive_skips} steps in a row skipped, train.nan_max_consecutive="
                    f"{tc.nan_max_consecutive}: the weights are likely wrecked (train.lr={tc.lr} too high?)")
        if tc.nan_max_fraction is not None:
            allowed = max(1, int(tc.nan_max_fraction * self.total_steps))
            if self.skipped_steps > allowed:
                return (f"{self.skipped_steps} of {self.total_steps} steps skipped, more than "
                        f"train.nan_max_fraction={tc.nan_max_fraction} allows ({allowed}): bad samples (ids in the "
                        f"nan events of metrics.jsonl) or wrecked weights (train.lr={tc.lr} too high?)")
        return None

    # ------------------------------------------------------------ the loop
    def fit(self, resume_path: Path | None = None, force: bool = False) -> TrainResult:
        with deterministic_algorithms(self.tc.deterministic):
            return self._fit(resume_path, force)

    def _fit(self, resume_path: Path | None, force: bool) -> TrainResult:
        if resume_path is not None:
            self.resume_from(resume_path, force)
        fault = _fault_point()
        if resume_path is None:
            self.log.log("start", 0, {"processes": self.world, "strategy": self.strategy.strategy,
                                      "trainable": self.strategy.trainable, "total": self.strategy.total,
                                      "steps": self.total_steps, "mixed_precision": self.acc.mixed_precision,
                                      "precision": self.precision.to_json() if self.precision else None})
        # SIGTERM (and Ctrl-C) finish the step, checkpoint, and leave cleanly
        previous = {sig: signal.signal(sig, self._on_sigterm) for sig in (signal.SIGTERM, signal.SIGINT)} \
            if self._can_trap() else {}
        set_train_mode(self.model, self.strategy)
        bar = ProgressBar(self.total_steps, enabled=self.main and self.tc.progress)
        bar.start(self.global_step)
        t0, s0 = time.perf_counter(), self.samples
        stop = self.early.stopped or self.global_step >= self.total_steps
        try:
            while not stop and self.epoch < self.tc.epochs:
                set_epoch = getattr(self.train_data.dataset, "set_epoch", None)
                if callable(set_epoch):  # per-sample augmentation streams derive from (seed, epoch, index)
                    set_epoch(self.epoch)
                perm = self._epoch_order(self.epoch)[self._epoch_offset:]
                batches = order.global_batches(perm, self.cfg.data.batch_size, drop_last=True)
                groups = order.optimizer_steps([order.shard(b, self.rank, self.world) for b in batches],
                                               self.tc.grad_accum)
                if self.step_in_epoch >= len(groups):  # nothing left of it (a forced resume moved past its end)
                    self.epoch, self.step_in_epoch, self._epoch_offset = self.epoch + 1, 0, 0
                    continue
                remaining = [b for g in groups[self.step_in_epoch:] for b in g]
                micro = iter(self._loader(self.train_data, remaining,
                                          order.epoch_seed(self.tc.seed, self.epoch)))
                while self.step_in_epoch < len(groups):
                    loss = self._step(micro, len(groups[self.step_in_epoch]), fault)
                    self.step_in_epoch += 1
                    self.global_step += 1
                    if self.step_in_epoch == len(groups):
                        self.epoch, self.step_in_epoch, self._epoch_offset = self.epoch + 1, 0, 0
                    epoch_end = self.step_in_epoch == 0
                    stop = self._after_step(loss, epoch_end, t0, s0, bar)
                    if fault == (self.global_step, -1):
                        os.kill(os.getpid(), signal.SIGKILL)
                    if stop or epoch_end:
                        break
        finally:
            bar.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.last_saved_step != self.global_step:
            self.save()
        if not self._term and self.main and self.export is not None:
            self._export()
        self.log.log("end", self.global_step, {"interrupted": self._term, "stopped_early": self.early.stopped})
        self.log.close()
        return TrainResult(self.run_dir, self.early.best, dict(self.last_val), self.global_step,
                           self.early.best_step, self.early.stopped, self._term, self.strategy,
                           list(self.skipped_ids), self.main, self.early.metric)

    def _after_step(self, loss: float, epoch_end: bool, t0: float, s0: int, bar: ProgressBar) -> bool:
        tc = self.tc
        rate = (self.samples - s0) / max(time.perf_counter() - t0, 1e-9)
        bar.update(self.global_step, loss, rate)
        if self.global_step % tc.log_every == 0 or epoch_end:
            # the objective's own metrics of this step (this process's batch), read now, not every step
            extra = {k: float(v) for k, v in self._step_metrics.items()}
            self.log.log("train", self.global_step, {"epoch": self.epoch, "loss": loss,
                                                     "lr": self.scheduler.get_last_lr()[0],
                                                     "samples_per_s": rate, "samples": self.samples, **extra})
        done = self.global_step >= self.total_steps
        want_eval = (tc.eval_every is not None and self.global_step % tc.eval_every == 0) or \
            (tc.eval_every is None and epoch_end) or done
        if want_eval and self.val_data is not None and self._evaluated_at != self.global_step:
            self.run_eval()
            self._evaluated_at = self.global_step
        want_ckpt = (tc.checkpoint_every is not None and self.global_step % tc.checkpoint_every == 0) or \
            (tc.checkpoint_every is None and epoch_end)
        if want_ckpt and self.last_saved_step != self.global_step:
            self.save()
        term = self._term
        if self.world > 1:
            term = bool(self.acc.reduce(torch.tensor([float(term)], device=self.acc.device), "sum")[0] > 0)
            self._term = term
        return done or self.early.stopped or term

    _evaluated_at = -1
    _step_metrics: dict[str, torch.Tensor] = {}

    def _export(self) -> None:
        model = self.acc.unwrap_model(self.model)
        if self.best_path is None and self.last_val:
            raise TrainingError(
                f"no evaluation gave a finite {self.early.metric} (last: {self.last_val.get(self.early.metric)}); "
                f"model/ is not exported; the eval events in {self.log.path} show each value")
        if self.best_path is not None and self.best_path.is_dir() and \
                self.best_path.name != ckpt.step_dir(self.ckpt_dir, self.global_step).name:
            ckpt.load_checkpoint(self.best_path, model)
        # the last line of defence: a model with non-finite weights is never exported
        bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise TrainingError(f"the model to export has non-finite weights ({', '.join(bad[:3])}); "
                                "model/ is not exported")
        assert self.export is not None
        self.export(model, self.run_dir / "model")

    # ------------------------------------------------------------ signals
    def _can_trap(self) -> bool:
        import threading

        return threading.current_thread() is threading.main_thread()

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        # finish the current optimizer step, checkpoint, leave the loop cleanly
        self._term = True
