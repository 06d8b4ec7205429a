"""Web-text quality rules: C4, Gopher quality, Gopher repetition, FineWeb; PII redaction; URL
blocklists. Pure functions of the text and their thresholds, standard library only.

Contract: every document rule is `rule(text, words, cfg) -> reason | None`; `c4_clean(text, cfg)
-> (cleaned text, reason | None)` also removes lines; `redact_pii(text, kinds) -> (text, counts)`.
Reason strings are `<rule set>:<rule>` (for example `gopher_quality:short_doc`) and are the exact
strings counted as `dropped:<reason>` and written to the rejected output.

Thresholds and their defaults are the published ones (Rae et al. 2021, table A1, for Gopher;
Raffel et al. 2020 for C4; Penedo et al. 2024 for FineWeb), as datatrove implements them.
`bench/filters.py` runs datatrove's implementations beside these on the same documents.

Words: the Gopher and FineWeb rules count words *and punctuation tokens* the way datatrove's
English word tokenizer (spaCy's rules) produces them, because the alpha-word ratio and the
repetition fractions depend on it. `words()` is one regular expression written to reproduce
those tokens (punctuation split off, `n't` and `'s` split, hyphens split, URLs, numbers and
dotted abbreviations kept whole) at a small fraction of spaCy's cost; the benchmark measures
where the decisions still differ.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Literal

# ---------------------------------------------------------------------------------------------
# Words and sentences
# ---------------------------------------------------------------------------------------------
_ABBREVIATIONS = (
    "Mr|Mrs|Ms|Messrs|Dr|Prof|St|Jr|vs|Inc|Ltd|Co|Corp|Bros|Mt|Adm|Gen|Gov|Sen|Rep|Rev|Jan|Feb|"
    "Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Ala|Ariz|Ark|Calif|Colo|Conn|Del|Fla|Ga|Ia|Ill|Ind|"
    "Kan|Kans|Ky|La|Md|Mass|Mich|Minn|Miss|Mo|Mont|Neb|Nebr|Nev|Okla|Ore|Pa|Tenn|Va|Wash|Wis"
)
# Contractions written without the apostrophe, which spaCy's English exceptions split:
# "dont" -> "do" "nt", "cannot" -> "can" "not", "im" -> "i" "m".
_BARE_CONTRACTIONS = (
    r"(?:ca|wo|do|did|does|is|are|was|were|have|has|had|could|should|would|ai)(?=nt\b)"
    r"|can(?=not\b)|i(?=m\b|ve\b)|(?:you|they)(?=re\b)|(?:he|she|what|that|there)(?=s\b)"
    r"|you(?=ll\b|ve\b)|gon(?=na\b)|got(?=ta\b)"
)
_WORD = re.compile(
    rf"\b(?i:{_BARE_CONTRACTIONS})|\b[iI](?=d\b)"
    r"|[^\W\d_]+(?=\s|$)"  # the common case first: letters up to a space
    r"|(?:https?://|www\.)[^\s<>\"]+?(?=[.,;:!?)\]'\"]*(?:\s|$))"  # URLs, trailing punct split
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|@\w+"  # e-mail addresses, handles
    r"|(?:[^\W\d_]\.){2,}|(?<![\w.])[A-Za-z]\.(?!\w)"  # U.S., e.g., single initials: J.
    rf"|(?:{_ABBREVIATIONS})\.(?!\w)"
    r"|(?<![\w.])8\)|\band/or\b"  # spaCy exceptions: the "8)" emoticon, and/or
    # A number before a unit is split from it, as spaCy's suffix rules do: 512 GB, 4 K.
    r"|(?<![\w.])[-+]?\d+(?=(?:[kmc]?m|kg|mg|g|lb|oz|ft|mph|[kKMGT][Bb]|mb|gb|[TGMK])\b)"
    r"|(?<![\w.])[-+]?\d\w*(?:[.,:/\u2013\u2212]\d\w*)*"  # 3.5 1,000 10:30 24/7 50th 2–3 -5
    r"|(?i:[^\W_]\w*?(?=n['’]t\b))|(?i:n['’]t)\b"  # do|n't, ca|n't
    r"|['’](?i:s|m|d|ll|re|ve)\b"  # 's 'm 'd 'll 're 've
    # Words: O'Neil, rock'n'roll, WordPress.com, PG&E, Covid-19, Disney+, P(A|B), -ane and An-
    # stay whole: spaCy splits punctuation off a chunk's ends and only a few marks inside it.
    r"|(?:(?<!\S)-)?[^\W_]\w*(?:(?:['’](?!(?i:s|m|d|ll|re|ve)\b)|&|\.(?![A-Z])|-(?=\d)"
    r"|[(|$*?+]+(?=\w)|,(?=\d))[^\W_]\w*)*(?:\+|-(?!\S))?"
    r"|\.{2,}|-{2,}|(?<!\S)/+[\w.]*"  # ellipsis, dashes, /usr
    r"|[:;=][-']?[()DPp/](?!\w)|\):"  # emoticons spaCy keeps whole
    r"|\S"  # any other single character: punctuation, symbols, underscores
)

# Sentence-final characters: the Unicode Sentence_Terminal characters of the common scripts.
TERMINAL_PUNCTUATION = frozenset(
    ".!?։؟۔܀܁܂।॥၊။።፧፨᙮᜵᜶។៕᠃᠉‼‽⁇⁈⁉⸮⸼。꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？｡"
)


# Closing quotes and brackets that may follow a sentence's terminal mark: `He left.”`,
# `（…した。）`, `「…です。」`. FineWeb's line-end rule looks through them.
CLOSING_MARKS = "\"'”’»›」』）)]】〕〉》｣〛〙〗｝}"


def ends_in_terminal(line: str, marks: str | frozenset[str] = TERMINAL_PUNCTUATION) -> bool:
    """Whether a line ends in one of `marks` (terminal punctuation), closing quotes and brackets
    after it aside."""
    bare = line.rstrip(CLOSING_MARKS)
    return bool(bare) and bare[-1] in marks


def ends_in_ellipsis(line: str) -> bool:
    """Whether a line ends in an ellipsis ("…", "⋯", or two or more periods), closing quotes
    and brackets after it aside: text cut off (a teaser, a shortened headline), not a finished
    sentence."""
    return line.rstrip(CLOSING_MARKS).endswith(("..", "…", "⋯"))


_BARE_WORDS = frozenset(
    ["cant", "wont", "dont", "didnt", "doesnt", "isnt", "arent", "wasnt", "werent", "havent",
     "hasnt", "hadnt", "couldnt", "shouldnt", "wouldnt", "aint", "cannot", "im", "ive", "id",
     "youre", "theyre", "hes", "shes", "whats", "thats", "theres", "youll", "youve", "gonna",
     "gotta"])
_ABBREVIATION_WORDS = frozenset(_ABBREVIATIONS.split("|"))
_SPLIT_SUFFIXES = frozenset(",.;:!?")


def words(text: str) -> list[str]:
    """Word and punctuation tokens, whitespace dropped (see the module docstring).

    Most whitespace-separated chunks are a plain word, or a plain word and one punctuation mark;
    those are split here without the regular expression, which costs five times as much."""
    out: list[str] = []
    append, extend, findall = out.append, out.extend, _WORD.findall
    for chunk in text.split():
        if chunk.isalpha():
            if chunk.lower() not in _BARE_WORDS:
                append(chunk)
                continue
        elif (chunk[-1] in _SPLIT_SUFFIXES and len(chunk) > 2 and chunk[:-1].isalpha()
              and chunk[:-1].lower() not in _BARE_WORDS
              and not (chunk[-1] == "." and chunk[:-1] in _ABBREVIATION_WORDS)):
            append(chunk[:-1])
            append(chunk[-1])
            continue
        extend(findall(chunk))
    return out


def _is_punct(token: str) -> bool:
    return all(unicodedata.category(c)[0] == "P" for c in token)


@functools.lru_cache(maxsize=65536)
def _is_symbol_token(token: str) -> bool:
    """Only punctuation and symbols: not a word for the Gopher word counts."""
    return all(unicodedata.category(c)[0] in "PSC" for c in token)


def count_sentences(line: str) -> int:
    """Sentences in a line by the sentencizer rule datatrove's C4 filter uses: a sentence starts
    at the first non-punctuation token after a sentence-final character."""
    n, seen_final = 1, False
    for token in words(line):
        if token in TERMINAL_PUNCTUATION:
            seen_final = True
        elif seen_final and not _is_punct(token):
            n += 1
            seen_final = False
    return n


# ---------------------------------------------------------------------------------------------
# Gopher repetition (Rae et al. 2021, table A1)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GopherRepetition:
    __pydantic_config__ = {"extra": "forbid"}  # a typo in the recipe fails at load

    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_n_grams: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(duplicate elements, their characters): every repeat after the first occurrence."""
    seen: set[str] = set()
    n = chars = 0
    for item in items:
        if item in seen:
            n += 1
            chars += len(item)
        else:
            seen.add(item)
    return n, chars


def _top_ngram_chars(tokens: list[str], n: int) -> int:
    """Characters covered by the most frequent n-gram (joined by spaces) times its count; among
    equally frequent n-grams the first seen, as `Counter.most_common` picks."""
    grams = Counter(zip(*(tokens[i:] for i in range(n)), strict=False))
    gram, count = max(grams.items(), key=itemgetter(1))  # max keeps the first of equals
    return (sum(map(len, gram)) + n - 1) * count


def _repeated_positions(tokens: list[str], n: int, candidates: list[int] | None
                        ) -> tuple[list[tuple[str, ...] | None], list[int]]:
    """The n-grams at the given positions (all positions when None) and, sorted, the positions
    whose n-gram occurs more than once. An n-gram can only repeat where its (n-1)-gram prefix
    does, so the positions found for n-1 are the candidates for n."""
    end = len(tokens) - n + 1
    if candidates is None:
        grams: list = list(zip(*(tokens[i:] for i in range(n)), strict=False))
        positions = range(end)
    else:
        positions = [i for i in candidates if i < end]
        grams = [None] * max(end, 0)
        for i in positions:
            grams[i] = tuple(tokens[i:i + n])
    counts = Counter(grams[i] for i in positions)
    if len(counts) == len(positions):
        return grams, []
    return grams, [i for i in positions if counts[grams[i]] > 1]


def _dup_ngram_chars(grams: list, repeated: list[int], n: int) -> int:
    """Characters in repeated n-grams, scanning left to right and jumping over each repeat:
    datatrove's `find_all_duplicate`, visiting only the positions of n-grams that occur more
    than once (an n-gram that occurs once is never a repeat and never starts a jump)."""
    chars, skip_until = 0, 0
    seen: set[tuple[str, ...]] = set()
    for i in repeated:
        if i < skip_until:
            continue  # inside the jump after a repeat: never visited
        gram = grams[i]
        if gram in seen:
            chars += sum(map(len, gram))
            skip_until = i + n
        else:
            seen.add(gram)
    return chars


def gopher_repetition(text: str, tokens: list[str], cfg: GopherRepetition) -> str | None:
    if not text:
        return "gopher_repetition:empty"
    paragraphs = _PARAGRAPHS.split(text.strip())
    dup, chars = _duplicates(paragraphs)
    if cfg.dup_para_frac and dup / len(paragraphs) > cfg.dup_para_frac:
        return "gopher_repetition:dup_para_frac"
    if cfg.dup_para_char_frac and chars / len(text) > cfg.dup_para_char_frac:
        return "gopher_repetition:dup_para_char_frac"
    lines = _LINES.split(text)
    dup, chars = _duplicates(lines)
    if cfg.dup_line_frac and dup / len(lines) > cfg.dup_line_frac:
        return "gopher_repetition:dup_line_frac"
    if cfg.dup_line_char_frac and chars / len(text) > cfg.dup_line_char_frac:
        return "gopher_repetition:dup_line_char_frac"
    for n, frac in cfg.top_n_grams:
        if len(tokens) >= n and _top_ngram_chars(tokens, n) / len(text) > frac:
            return f"gopher_repetition:top_{n}_gram"
    candidates: list[int] | None = None
    previous = 0
    for n, frac in sorted(cfg.dup_n_grams):
        # Positions are only narrowed from the positions of shorter n-grams (n - 1 of them).
        grams, repeated = _repeated_positions(tokens, n, candidates if previous == n - 1
                                              else None)
        candidates, previous = repeated, n
        if repeated and _dup_ngram_chars(grams, repeated, n) / len(text) > frac:
            return f"gopher_repetition:dup_{n}_gram"
    return None


# ---------------------------------------------------------------------------------------------
# Gopher quality (Rae et al. 2021, appendix A.1.1)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GopherQuality:
    __pydantic_config__ = {"extra": "forbid"}  # a typo in the recipe fails at load

    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3
    max_avg_word_length: float = 10
    max_symbol_word_ratio: float = 0.1  # "#" and ellipses per word
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    # ...of at least this many lines: one cut-off line is a teaser's end ("その判断は…", a
    # paywalled article's "may receive further discipline...."), not a page of snippets; it
    # dropped 2 verified article openings of 3 lines (bench/multilingual.py) and no junk.
    min_ellipsis_lines: int = 2
    min_alpha_words_ratio: float = 0.8  # words (not punctuation tokens) with a letter
    min_stop_words: int = 2
    stop_words: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")


def alpha_words_ratio(tokens: list[str], n_words: int) -> float:
    """Gopher's share of words with a letter, over words (`n_words`: the tokens that are not
    only punctuation and symbols), numbers left out of both counts:
    - over words, not tokens: Gopher's words are space-separated, so "Smith," and "3-1." are
      one word each; counting the split-off punctuation tokens as words without a letter
      dropped 14 of 161 verified English article bodies (scores, dates, quotes);
    - numbers (a digit and no letter: "2019", "70-44", "978-4-257", "3.5%") are words of the
      language, not the symbols the rule is for: a results table, a standings table and a
      bibliography's ISBNs dropped verified article bodies (a Portuguese NASCAR standings
      page, a ja Wikipedia biography; bench/multilingual.py), and no junk page there was
      dropped by this rule alone for its numbers.
    What is left for the rule: a text of numbers only (no word left: it scores 0) and words of
    other characters without a letter (fractions, superscripts); symbol and punctuation
    tokens were never words here."""
    alpha = numbers = 0
    for t in tokens:
        if t.isalpha() or any(c.isalpha() for c in t):
            alpha += 1
        elif any(c.isdecimal() for c in t):
            numbers += 1
    return alpha / (n_words - numbers) if n_words > numbers else 0.0


def gopher_quality(text: str, tokens: list[str], cfg: GopherQuality) -> str | None:
    if not tokens:
        return "gopher_quality:short_doc"
    n_tokens = len(tokens)
    # Words are the tokens that are not only punctuation and symbols; most are alphanumeric.
    alnum = list(map(str.isalnum, tokens))
    lengths = list(map(len, tokens))
    n_words = sum(alnum)
    total_length = sum(compress(lengths, alnum))
    for token, is_alnum in zip(tokens, alnum, strict=True):
        if not is_alnum and not _is_symbol_token(token):
            n_words += 1
            total_length += len(token)
    if cfg.min_doc_words and n_words < cfg.min_doc_words:
        return "gopher_quality:short_doc"
    if cfg.max_doc_words and n_words > cfg.max_doc_words:
        return "gopher_quality:long_doc"
    mean_length = total_length / n_words if n_words else 0.0
    if cfg.min_avg_word_length and mean_length < cfg.min_avg_word_length:
        return "gopher_quality:below_avg_word_length"
    if cfg.max_avg_word_length and mean_length > cfg.max_avg_word_length:
        return "gopher_quality:above_avg_word_length"
    if cfg.max_symbol_word_ratio:
        if text.count("#") / n_tokens > cfg.max_symbol_word_ratio:
            return "gopher_quality:too_many_hashes"
        if (text.count("...") + text.count("…")) / n_tokens > cfg.max_symbol_word_ratio:
            return "gopher_quality:too_many_ellipsis"
    lines = text.splitlines() or [""]
    if cfg.max_bullet_lines_ratio:
        bullets = sum(line.lstrip().startswith(("•", "-")) for line in lines)
        if bullets / len(lines) > cfg.max_bullet_lines_ratio:
            return "gopher_quality:too_many_bullets"
    if cfg.max_ellipsis_lines_ratio:
        ellipses = sum(line.rstrip().endswith(("...", "…")) for line in lines)
        if ellipses >= cfg.min_ellipsis_lines \
                and ellipses / len(lines) > cfg.max_ellipsis_lines_ratio:
            return "gopher_quality:too_many_end_ellipsis"
    if cfg.min_alpha_words_ratio and alpha_words_ratio(tokens, n_words) \
            < cfg.min_alpha_words_ratio:
        return "gopher_quality:below_alpha_ratio"
    if cfg.min_stop_words and len(set(cfg.stop_words).intersection(tokens)) < cfg.min_stop_words:
        return "gopher_quality:few_stop_words"
    return None


# ---------------------------------------------------------------------------------------------
# C4 (Raffel et al. 2020, section 2.2)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class C4:
    """The paper's numbers by default (lines of at least 3 words, a quote or apostrophe counts as
    a terminal mark) but pages of at least 3 sentences, as in the TFDS code that built C4
    (c4_utils.py: 5 words, 3 sentences, no apostrophe; `variant = "tfds"` selects those). The
    paper's 5 sentences (`min_num_sentences = 5`, or None for the variant's) dropped 5 of the
    161 English Scrapinghub article bodies, news briefs of 3 and 4 sentences; since
    `min_kept_char_frac`, the navigation texts that the 5-sentence minimum dropped are dropped
    as mostly_removed instead (bench/multilingual.py)."""

    __pydantic_config__ = {"extra": "forbid"}

    variant: Literal["paper", "tfds"] = "paper"  # the constants below unless set explicitly
    min_words_per_line: int | None = None  # paper 3, tfds 5
    min_num_sentences: int | None = 3  # paper 5, tfds 3; None: the variant's
    max_word_length: int = 1000  # a line with a longer word is removed
    filter_no_terminal_punct: bool = True
    remove_citations: bool = True  # [1], [edit], [citation needed]
    filter_lorem_ipsum: bool = True  # drops the page
    filter_javascript: bool = True  # drops the line
    filter_curly_bracket: bool = True  # drops the page
    filter_policy: bool = True  # drops lines about cookies and terms of use
    # Sieve's, not C4's: a page whose lines C4 removed for more than this share of their
    # characters was navigation or a listing, and what is left of it boilerplate (a median 13%
    # of the Scrapinghub pages' text outside their articles survives the line rules, against
    # 92% of the article bodies: bench/multilingual.py). 0 turns it off.
    min_kept_char_frac: float = 0.3

    def resolved(self) -> tuple[int, int, tuple[str, ...]]:
        words_, sentences, marks = ((5, 3, (".", "?", "!", '"')) if self.variant == "tfds"
                                    else (3, 5, (".", "?", "!", '"', "'")))
        return (words_ if self.min_words_per_line is None else self.min_words_per_line,
                sentences if self.min_num_sentences is None else self.min_num_sentences, marks)


_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
           "use cookies")


def c4_line_ends(line: str, marks: tuple[str, ...]) -> bool:
    """C4's "ended in a terminal punctuation mark (a period, exclamation mark, question mark,
    or end quotation mark)": one of `marks`, or (Sieve's reading of the end quotation mark)
    a period, exclamation or question mark followed by closing quotes and brackets: `.”`,
    `?»`, `.)`. C4's code and datatrove look for ASCII marks only, so a line of quoted speech
    in curly quotes was removed: 202 lines, 6.9% of the characters of the Scrapinghub
    benchmark's article bodies."""
    return line.endswith(marks) or ends_in_terminal(line, ".?!")


def _c4_pass(text: str, cfg: C4) -> tuple[list[str], int, int, str | None]:
    """(the lines C4 keeps, the sentences counted in them (counting stops at the minimum), the
    characters of every stripped line, and the reason found on a kept line, if any)."""
    min_words, min_sentences, marks = cfg.resolved()
    kept: list[str] = []
    sentences = total = 0
    for line in text.splitlines():
        line = line.strip()
        total += len(line)
        line_words = line.split()
        if cfg.max_word_length >= 0 and any(len(w) > cfg.max_word_length for w in line_words):
            continue
        if cfg.remove_citations:
            line = _CITATION.sub("", line)
        if cfg.filter_no_terminal_punct and (not c4_line_ends(line, marks)
                                             or line.endswith("...")):
            continue
        if len(line_words) < min_words:
            continue
        lower = line.lower()
        if cfg.filter_lorem_ipsum and "lorem ipsum" in lower:
            return kept, sentences, total, "c4:lorem_ipsum"
        if cfg.filter_javascript and "javascript" in lower:
            continue
        if cfg.filter_curly_bracket and "{" in line:
            return kept, sentences, total, "c4:curly_bracket"
        if cfg.filter_policy and any(p in lower for p in _POLICY):
            continue
        if sentences < min_sentences:  # counting stops once the page has enough
            sentences += count_sentences(line)
        kept.append(line)
    return kept, sentences, total, None


def c4_clean(text: str, cfg: C4) -> tuple[str, str | None]:
    """Keep the lines C4 keeps; the page is dropped for lorem ipsum, a curly bracket (on a kept
    line), fewer sentences than the minimum in what is left, or (Sieve's) less than
    `min_kept_char_frac` of its characters left."""
    kept, sentences, total, reason = _c4_pass(text, cfg)
    if reason is not None:
        return text, reason
    if sentences < cfg.resolved()[1]:
        return text, "c4:too_few_sentences"
    if sum(map(len, kept)) < cfg.min_kept_char_frac * total:
        return text, "c4:mostly_removed"
    return "\n".join(kept).strip(), None


# ---------------------------------------------------------------------------------------------
# FineWeb (Penedo et al. 2024, section 3.4)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FineWeb:
    __pydantic_config__ = {"extra": "forbid"}  # a typo in the recipe fails at load

    line_punct_thr: float = 0.12  # share of lines ending a sentence, at least (line_punct_ratio)
    line_punct_exclude_zero: bool = False
    short_line_thr: float = 0.67  # share of lines of <= short_line_length characters, at most
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01  # characters in duplicated lines, at most
    # Line breaks per word, at most. A break is what separates two non-empty lines, however
    # many newlines it takes: FineWeb counts every "\n" of its trafilatura text, which has one
    # between paragraphs; Wikipedia's and most article text's blank lines between paragraphs
    # would otherwise count twice (jawiki's こどもの文化 passes with this reading, not without).
    new_line_ratio: float = 0.3


def sentence_ends_inside(line: str) -> int:
    """Sentence ends inside a line, before its last character: a terminal mark (closing
    quotes and brackets after it aside) followed by a space, or by any character after a
    full-width mark (CJK writes no space after 。)."""
    bare = line.rstrip()
    n, i, end = 0, 0, len(bare)
    while i < end:
        ch = bare[i]
        i += 1
        if ch in TERMINAL_PUNCTUATION and i < end and bare[i] not in TERMINAL_PUNCTUATION:
            while i < end and bare[i] in CLOSING_MARKS:
                i += 1
            if i < end and (bare[i].isspace() or not ch.isascii()):
                n += 1
    return n


def line_punct_ratio(lines: list[str]) -> float:
    """FineWeb's share of lines that end in terminal punctuation, over non-empty lines, with
    two departures that keep article text (bench/multilingual.py):
    - a run of bulleted lines (Gopher's bullets: "•" or "-" first) is one line, ended when its
      last item is: list items are not sentences, and Gopher's too_many_bullets already bounds
      how much of a page lists may be. A Wikipedia article with a works list or a list of
      related articles no longer reads as a menu;
    - a line holding three or more sentences counts as ended even when its last one lacks
      the mark: one paragraph of prose whose last sentence the page left unfinished;
    - a line that ends in an ellipsis (`ends_in_ellipsis`: "..", "...") is not ended: lists of
      cut-off headlines ("고루했던 KBS 예능국의 아..", "Leia mais...") read as sentences
      otherwise, and kept three navigation pages of bench/multilingual.py."""
    units = ended = 0
    last = in_list = False  # the current unit's verdict; whether it is a list
    for line in lines:
        bullet = line.lstrip().startswith(("•", "-"))
        done = (ends_in_terminal(line) and not ends_in_ellipsis(line)) \
            or sentence_ends_inside(line) >= 2
        if bullet and in_list:  # the list's verdict is its latest item's
            ended += done - last
        else:
            units += 1
            ended += done
        last, in_list = done, bullet
    return ended / units


def fineweb(text: str, tokens: list[str], cfg: FineWeb) -> str | None:
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return "fineweb:empty"
    ratio = line_punct_ratio(lines)
    if ratio < cfg.line_punct_thr and not (ratio == 0 and cfg.line_punct_exclude_zero):
        return "fineweb:line_punct_ratio"
    if sum(1 for line in lines if len(line) <= cfg.short_line_length) / len(lines) \
            > cfg.short_line_thr:
        return "fineweb:short_line_ratio"
    if _duplicates(lines)[1] / max(1, len(text) - text.count("\n")) > cfg.char_duplicates_ratio:
        return "fineweb:char_dup_ratio"
    if (len(lines) - 1) / max(1, len(tokens)) > cfg.new_line_ratio:
        return "fineweb:list_ratio"
    return None


# ---------------------------------------------------------------------------------------------
# PII redaction
# ---------------------------------------------------------------------------------------------
PII_KINDS = ("email", "ip", "phone")
PII_PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "phone": "<PHONE>"}


def _first(chars: str, pattern: str) -> re.Pattern:
    """`pattern`, told first which characters a match can start with: the same matches, and a
    position that cannot start one fails at once, where the full pattern's lookbehind and
    alternatives were tried at every character (the phone pattern 2.5x faster, the IP patterns
    1.5x, on the scale corpus's pages)."""
    return re.compile(f"(?=[{chars}])(?:{pattern})")


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
_IPV4 = _first(r"\d", r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
                     r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]\d)")
_IPV6 = _first(r"0-9A-Fa-f:",
               r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?:::?[0-9A-Fa-f]{1,4})*"
               r"|(?<![\w:])::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}(?![\w:])")
# North American numbers (+1 555 123 4567, (555) 123-4567, 555.123.4567) and international
# ones written with a leading + and 8 to 15 digits in groups.
_PHONE = _first(r"\d(+",
                r"(?<![\w+])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\w)"
                r"|(?<![\w+])\+(?:\d[ .-]?){7,14}\d(?!\w)")


_DIGIT = re.compile(r"\d")


def _public_ip(match: re.Match) -> bool:
    try:
        address = ipaddress.ip_address(match.group(0))
    except ValueError:
        return False
    return address.is_global


def redact_pii(text: str, kinds: tuple[str, ...] | list[str]) -> tuple[str, dict[str, int]]:
    """Replace e-mail addresses, public IPv4/IPv6 addresses (private, loopback and documentation
    ranges are left alone: they identify no one) and phone numbers by placeholders."""
    text, counts, _ = redact_pii_spans(text, kinds)
    return text, counts


Redaction = tuple[int, int, int, int, str]  # input start, end; output start, end; kind


def redact_pii_spans(text: str, kinds: tuple[str, ...] | list[str]
                     ) -> tuple[str, dict[str, int], list[Redaction]]:
    """`redact_pii`, and where each placeholder went: (start, end) of what it replaced in the
    input and of the placeholder in the output (code points), by position. The patterns run
    one after the other; a placeholder holds no digit, `@`, `.` or `:`, so no later pattern
    matches inside one and every span maps back to the input."""
    counts: dict[str, int] = {}
    done: list[tuple[int, int, int, str]] = []  # input start, end, placeholder length, kind

    def to_input(p: int) -> int:
        shift = 0
        for s, e, n, _ in done:
            if p < s + shift:
                break
            shift += n - (e - s)
        return p - shift

    def sub(kind: str, pattern: re.Pattern, keep=None) -> None:
        nonlocal text
        found: list[tuple[int, int]] = []

        def replace(match: re.Match) -> str:
            if keep is not None and not keep(match):
                return match.group(0)
            found.append(match.span())
            return PII_PLACEHOLDERS[kind]

        text = pattern.sub(replace, text)
        if found:
            counts[kind] = counts.get(kind, 0) + len(found)
            n = len(PII_PLACEHOLDERS[kind])
            mapped = [(to_input(a), to_input(a) + (b - a), n, kind) for a, b in found]
            done.extend(mapped)
            done.sort()

    digits = _DIGIT.search(text) is not None  # IPv4 addresses and phone numbers hold digits
    if "email" in kinds and "@" in text:
        sub("email", _EMAIL)
    if "ip" in kinds:
        if digits and "." in text:
            sub("ip", _IPV4, _public_ip)
        if ":" in text:
            sub("ip", _IPV6, _public_ip)
    if "phone" in kinds and digits:
        sub("phone", _PHONE)
    spans, shift = [], 0
    for s, e, n, kind in done:
        spans.append((s, e, s + shift, s + shift + n, kind))
        shift += n - (e - s)
    return text, counts, spans


# ---------------------------------------------------------------------------------------------
# URL / domain blocklist
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blocklist:
    """Domains (a listed domain blocks its subdomains too) and exact URLs, one per line in a
    text file; `#` starts a comment."""

    domains: frozenset[str] = field(default_factory=frozenset)
    urls: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_file(cls, path: str) -> Blocklist:
        domains, urls = set(), set()
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                entry = line.split("#", 1)[0].strip()
                if not entry:
                    continue
                if "/" in entry:
                    urls.add(entry.rstrip("/"))
                else:
                    domains.add(entry.lower().lstrip(".").removeprefix("www."))
        return cls(frozenset(domains), frozenset(urls))

    def reason(self, url: str | None, domain: str | None) -> str | None:
        if url and url.rstrip("/") in self.urls:
            return "blocklist:url"
        host = (domain or "").lower().removeprefix("www.")
        while host:
            if host in self.domains:
                return "blocklist:domain"
            host = host.partition(".")[2]
        return None


# ---------------------------------------------------------------------------------------------
# What a drop was for: the statistic that failed and its threshold
# ---------------------------------------------------------------------------------------------
def explain(reason: str, text: str, settings, tokens: list[str] | None = None
            ) -> tuple[float, float]:
    """(value, threshold) of the statistic behind a rule-set reason, on the text the rule saw
    (the clean stage stores them in the rejected row; its kernels compute the same numbers).
    Reasons with no ratio behind them (an empty text, lorem ipsum, a curly bracket) give
    (1, 0) or (0, 0). `tokens`: the text's words where they are not `words(text)`."""
    rule_set, _, rule = reason.partition(":")
    tokens = words(text) if tokens is None else tokens
    if rule_set == "gopher_repetition":
        cfg = settings.gopher_repetition
        if rule == "empty":
            return 0.0, 0.0
        if rule.startswith("dup_para"):
            paragraphs = _PARAGRAPHS.split(text.strip())
            dup, chars = _duplicates(paragraphs)
            return ((dup / len(paragraphs), cfg.dup_para_frac) if rule == "dup_para_frac"
                    else (chars / len(text), cfg.dup_para_char_frac))
        if rule.startswith("dup_line"):
            lines = _LINES.split(text)
            dup, chars = _duplicates(lines)
            return ((dup / len(lines), cfg.dup_line_frac) if rule == "dup_line_frac"
                    else (chars / len(text), cfg.dup_line_char_frac))
        n = int(rule.split("_")[1])
        if rule.startswith("top_"):
            return _top_ngram_chars(tokens, n) / len(text), dict(cfg.top_n_grams)[n]
        grams, repeated = _repeated_positions(tokens, n, None)
        return _dup_ngram_chars(grams, repeated, n) / len(text), dict(cfg.dup_n_grams)[n]
    if rule_set == "gopher_quality":
        return _gopher_quality_statistic(rule, text, tokens, settings.gopher_quality)
    if rule_set == "c4":
        kept, sentences, total, _ = _c4_pass(text, settings.c4)
        if rule == "too_few_sentences":
            return float(sentences), float(settings.c4.resolved()[1])
        if rule == "mostly_removed":
            return sum(map(len, kept)) / max(total, 1), settings.c4.min_kept_char_frac
        return 1.0, 0.0
    if rule_set == "fineweb":
        cfg = settings.fineweb
        lines = [line for line in text.split("\n") if line.strip()]
        if rule == "empty":
            return 0.0, 0.0
        if rule == "line_punct_ratio":
            return line_punct_ratio(lines), cfg.line_punct_thr
        if rule == "short_line_ratio":
            return (sum(1 for line in lines if len(line) <= cfg.short_line_length) / len(lines),
                    cfg.short_line_thr)
        if rule == "char_dup_ratio":
            return (_duplicates(lines)[1] / max(1, len(text) - text.count("\n")),
                    cfg.char_duplicates_ratio)
        return (len(lines) - 1) / max(1, len(tokens)), cfg.new_line_ratio
    raise ValueError(f"no statistic behind reason {reason!r}")


def _gopher_quality_statistic(rule: str, text: str, tokens: list[str], cfg: GopherQuality
                              ) -> tuple[float, float]:
    n_tokens = len(tokens)
    words_ = [t for t in tokens if t.isalnum() or not _is_symbol_token(t)]
    if rule in ("short_doc", "long_doc"):
        return float(len(words_)), float(cfg.min_doc_words if rule == "short_doc"
                                         else cfg.max_doc_words)
    if rule.endswith("avg_word_length"):
        mean = sum(map(len, words_)) / len(words_) if words_ else 0.0
        return mean, (cfg.min_avg_word_length if rule.startswith("below")
                      else cfg.max_avg_word_length)
    if rule == "too_many_hashes":
        return text.count("#") / n_tokens, cfg.max_symbol_word_ratio
    if rule == "too_many_ellipsis":
        return (text.count("...") + text.count("…")) / n_tokens, cfg.max_symbol_word_ratio
    lines = text.splitlines() or [""]
    if rule == "too_many_bullets":
        return (sum(line.lstrip().startswith(("•", "-")) for line in lines) / len(lines),
                cfg.max_bullet_lines_ratio)
    if rule == "too_many_end_ellipsis":
        return (sum(line.rstrip().endswith(("...", "…")) for line in lines) / len(lines),
                cfg.max_ellipsis_lines_ratio)
    if rule == "below_alpha_ratio":
        return alpha_words_ratio(tokens, len(words_)), cfg.min_alpha_words_ratio
    return float(len(set(cfg.stop_words).intersection(tokens))), float(cfg.min_stop_words)
