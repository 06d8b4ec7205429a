"""SentencePiece training and loading; the special-token layout Sieve's tokenizers share.

Contract: `train_model(sentences, cfg) -> model bytes`, deterministic for the same sentences and
config (seeded sampler, fixed thread count); `load(path) -> SentencePieceProcessor`.
ids: 0 <unk>, 1 <s> (bos), 2 </s> (eos), 3 <pad>; "\\n" is a user-defined piece so that paragraph
breaks survive a round trip as one token.
Reference: Kudo & Richardson, 2018, https://github.com/google/sentencepiece
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import sentencepiece as spm

from pipelines.recipe import TokenizerConfig

UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
USER_SYMBOLS = ["\n"]


def train_model(sentences: Iterable[str], cfg: TokenizerConfig) -> bytes:
    buffer = io.BytesIO()
    spm.set_random_generator_seed(cfg.seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buffer,
        model_type=cfg.model_type, vocab_size=cfg.vocab_size,
        character_coverage=cfg.character_coverage, byte_fallback=cfg.byte_fallback,
        normalization_rule_name=cfg.normalization_rule_name,
        # Collapsing whitespace would break decode(encode(text)) == text.
        remove_extra_whitespaces=cfg.normalization_rule_name != "identity",
        input_sentence_size=cfg.input_sentence_size, shuffle_input_sentence=True,
        num_threads=cfg.num_threads, user_defined_symbols=USER_SYMBOLS,
        unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID,
        allow_whitespace_only_pieces=True, split_digits=True, minloglevel=2,
    )
    return buffer.getvalue()


def load(path: str) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(path))
