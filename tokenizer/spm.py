"""SentencePiece training and loading; the special-token layout Sieve's tokenizers share.

Contract: `train_model(sentences, cfg) -> model bytes`, deterministic for the same sentences and
config (seeded sampler, fixed thread count); `load(path) -> SentencePieceProcessor`.
ids: 0 <unk>, 1 <s> (bos), 2 </s> (eos), 3 <pad>; "\\n" is a user-defined piece so that paragraph
breaks survive a round trip as one token.
Reference: Kudo & Richardson, 2018, https://github.com/google/sentencepiece
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterable

import numpy as np
import sentencepiece as spm

from pipelines.recipe import TokenizerConfig

UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
USER_SYMBOLS = ["\n"]
# SentencePiece's max_sentence_length, its default: it skips a longer training line with only a
# log line. The tokenizer stage samples long lines as pieces that fit (tokenizer/train.py).
MAX_SENTENCE_BYTES = 4192


DEFAULT_COVERAGE = 0.9995  # SentencePiece's own default, and its value for CJK
SMALL_SET_COVERAGE = 0.9999  # SentencePiece says 1.0 for small character sets; web text's
# stray symbols and emoji would each take a vocabulary slot at 1.0
CJK_SCRIPTS = ("Hani", "Hira", "Kana", "Hang")
CJK_SHARE = 0.01  # of the letters, from which the rich character set's coverage applies


def character_counts(path: str, chunk_chars: int = 1 << 22) -> np.ndarray:
    """int64[0x110000]: occurrences of each code point in a text file (line breaks aside)."""
    counts = np.zeros(0x110000, dtype=np.int64)
    with open(path, encoding="utf-8", errors="replace") as fh:
        while chunk := fh.read(chunk_chars):
            cps = np.frombuffer(chunk.encode("utf-32-le", errors="surrogatepass"), np.uint32)
            counts += np.bincount(cps, minlength=0x110000)
    counts[10] = 0
    return counts


def choose_coverage(path: str, vocab_size: int) -> dict:
    """character_coverage for a sample file, from its scripts: 0.9995 where Han, kana or
    Hangul make at least 1% of its letters, else 0.9999; lowered where the characters that
    coverage needs would take more than half the vocabulary (SentencePiece refuses a vocabulary
    smaller than its required characters)."""
    from pipelines import languages

    counts = character_counts(path)
    table = languages._script_table()
    by_script = np.bincount(table, weights=counts, minlength=len(languages.SCRIPT_NAMES) + 1)
    letters = {languages.SCRIPT_NAMES[k - 1]: int(v) for k, v in enumerate(by_script.tolist())
               if k and v}
    total_letters = sum(letters.values())
    cjk = sum(letters.get(x, 0) for x in CJK_SCRIPTS) / total_letters if total_letters else 0.0
    target = DEFAULT_COVERAGE if cjk >= CJK_SHARE else SMALL_SET_COVERAGE
    ordered = np.sort(counts[counts > 0])[::-1]
    share = np.cumsum(ordered) / max(int(ordered.sum()), 1)
    needed = int(np.searchsorted(share, target) + 1)
    budget = max(vocab_size // 2, 1)
    coverage = target
    if needed > budget and len(share) >= budget:
        # SentencePiece accepts 0.98 at the least; below that the vocabulary is too small
        # and training fails with _train's message.
        coverage = max(float(np.floor(share[budget - 1] * 1e4) / 1e4), 0.98)
    return {"character_coverage": coverage, "chosen_by": "scripts",
            "target_coverage": target, "characters": int(len(ordered)),
            "characters_for_target": needed, "cjk_share_of_letters": round(cjk, 4),
            "letters_by_script": dict(sorted(letters.items()))}


def train_model(sentences: Iterable[str], cfg: TokenizerConfig) -> bytes:
    """A model from sentences held by the caller (SentencePiece samples `input_sentence_size`);
    an unset character_coverage is SentencePiece's default here."""
    if cfg.character_coverage is None:
        cfg = cfg.model_copy(update={"character_coverage": DEFAULT_COVERAGE})
    return _train(cfg, sentence_iterator=iter(sentences),
                  input_sentence_size=cfg.input_sentence_size)


def train_model_from_file(path: str, cfg: TokenizerConfig) -> bytes:
    """A model from a file of sentences, one per line, every one of them used (the file is the
    sample already: tokenizer/train.py). The file's path is cleared from the model's trainer
    spec: it is a temporary name, and the same sentences must give the same bytes."""
    from sentencepiece import sentencepiece_model_pb2

    if cfg.character_coverage is None:
        cfg = cfg.model_copy(update={"character_coverage": choose_coverage(
            path, cfg.vocab_size)["character_coverage"]})
    model = sentencepiece_model_pb2.ModelProto()
    if "," in path:
        # SentencePiece reads `input` as a comma-separated list of files: a path holding a
        # comma (a --root named "run,2") would name files that do not exist. Train from a link
        # without one.
        with tempfile.TemporaryDirectory() as tmp:
            link = os.path.join(tmp, "sentences.txt")
            if "," in link:
                raise ValueError(f"tokenizer: SentencePiece cannot read {path!r} (it splits "
                                 f"paths at commas) and the temporary folder {tmp!r} has one "
                                 "too; set TMPDIR to a path without a comma")
            os.symlink(os.path.abspath(path), link)
            model.ParseFromString(_train(cfg, input=link, input_sentence_size=0))
    else:
        model.ParseFromString(_train(cfg, input=path, input_sentence_size=0))
    model.trainer_spec.ClearField("input")
    return model.SerializeToString()


def _train(cfg: TokenizerConfig, **source) -> bytes:
    buffer = io.BytesIO()
    spm.set_random_generator_seed(cfg.seed)
    try:
        _run_trainer(cfg, buffer, source)
    except RuntimeError as exc:
        found = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)",
                          str(exc))
        if found is None:
            raise
        raise ValueError(
            f"tokenizer: [tokenizer] vocab_size {found[1]} is smaller than the {found[2]} "
            f"characters that character_coverage {cfg.character_coverage} keeps (Chinese and "
            "Japanese text need thousands); raise vocab_size or lower character_coverage"
        ) from None
    return buffer.getvalue()


def _run_trainer(cfg: TokenizerConfig, buffer: io.BytesIO, source: dict) -> None:
    spm.SentencePieceTrainer.train(
        **source, model_writer=buffer,
        model_type=cfg.model_type, vocab_size=cfg.vocab_size,
        character_coverage=cfg.character_coverage, byte_fallback=cfg.byte_fallback,
        normalization_rule_name=cfg.normalization_rule_name,
        # Collapsing whitespace would break decode(encode(text)) == text.
        remove_extra_whitespaces=cfg.normalization_rule_name != "identity",
        shuffle_input_sentence=True,
        num_threads=cfg.num_threads,
        user_defined_symbols=USER_SYMBOLS + [s for s in cfg.user_defined_symbols
                                             if s not in USER_SYMBOLS],
        control_symbols=list(cfg.special_tokens),
        unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID,
        allow_whitespace_only_pieces=True, split_digits=True, minloglevel=2,
        max_sentence_length=MAX_SENTENCE_BYTES,
    )


def load(path: str) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(path))


def export_transformers(model_path: str, out_dir: str, model_type: str,
                        user_defined_symbols: list[str], special_tokens: list[str]) -> None:
    """Write `tokenizer.json` + config so `AutoTokenizer.from_pretrained(out_dir)` loads it.

    BPE models go through transformers' Llama conversion, which reproduces SentencePiece's BPE
    segmentation exactly. For unigram models, the SentencePiece pieces and scores become a
    `tokenizers` Unigram model with byte fallback; a Metaspace pre-tokenizer (prepend on the
    first section only) reproduces SentencePiece's dummy prefix, and "\\n" is an added
    token, matched before the model as SentencePiece matches user-defined symbols.
    Segmentations agree except where two segmentations have exactly the
    same score (runs like "-----"), which the two Viterbi implementations break differently;
    decoding is identical. (transformers' own SentencePiece conversion turns a unigram model into
    BPE merges, which changes segmentations far more often.)
    """
    import os
    import shutil
    import tempfile

    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import Unigram
    from transformers import LlamaTokenizer, PreTrainedTokenizerFast

    sp = load(model_path)
    unk, bos, eos, pad = (sp.id_to_piece(i) for i in (UNK_ID, BOS_ID, EOS_ID, PAD_ID))
    extra = {"additional_special_tokens": list(special_tokens)} if special_tokens else {}
    if model_type == "bpe":
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(model_path, os.path.join(tmp, "tokenizer.model"))
            llama = LlamaTokenizer.from_pretrained(
                tmp, add_bos_token=False, add_eos_token=False, legacy=False, unk_token=unk,
                bos_token=bos, eos_token=eos, pad_token=pad, **extra)
        llama.save_pretrained(out_dir)
        return
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(Unigram(vocab, unk_id=UNK_ID, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first",
                                                 split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    specials = [unk, bos, eos, pad, *special_tokens]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    symbols = USER_SYMBOLS + [s for s in user_defined_symbols if s not in USER_SYMBOLS]
    tok.add_tokens([AddedToken(s, normalized=False, special=False) for s in symbols])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, bos_token=bos,
                                      eos_token=eos, pad_token=pad, add_bos_token=False,
                                      add_eos_token=False, **extra)
    wrapped.save_pretrained(out_dir)
