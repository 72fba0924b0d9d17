"""A small byte-level BPE tokenizer trained locally (no hub) for the built-in tiny Llama.

Byte-level so any text round-trips (captions of unseen steps included); trained on the step
labels and the prompt words so that a step is a handful of tokens. Training is deterministic
for the same texts, so a model rebuilt from its config and labels gets the same tokenizer.
"""
from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; returns a transformers fast tokenizer with <s>, </s>,
    <pad>, <unk> (a Llama-style tokenizer that adds <s> in front)."""
    if not texts:
        raise ValueError("cannot train a tokenizer on an empty text list")
    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)
