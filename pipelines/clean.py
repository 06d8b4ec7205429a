"""Clean stage: normalise every document, then apply the recipe's rules (Beam).

Contract: `run(cfg: CleanConfig, {"ingest": folder}, out, options) -> counters`. Each document is
normalised (`filters.normalize`: ftfy's mojibake repair, NFC, control characters, whitespace),
annotated with its language, then judged by its source's rules (`CleanConfig.rules_for`): URL
blocklist, minimum length, language, and the quality rule sets (C4, Gopher, FineWeb) in the
recipe's order. The first reason wins. Kept documents have their PII redacted and go to
`out/docs/`, with what cleaning changed in `meta.cleaning` (`cleaning_meta`: C4's removed lines
and the PII placeholders, by offset); dropped ones go to `out/rejected/` with the reason.

Counters: `dropped:<reason>` in total, and per source `source:<name>:dropped:<reason>`,
`source:<name>:<split>:in` / `:out`, `pii:<kind>` and `source:<name>:pii:<kind>`,
`mojibake_fixed`, `c4_lines_removed`. A split of a labelled source (IMDb, CoNLL-2003), or any
validation or test split, that loses every document fails the stage: an emptied evaluation set is
never a silent outcome.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import filters, langid, languages, quality, quality_kernels
from pipelines.io import (
    DocumentSinks,
    ReadFiles,
    basename,
    check_document_outputs,
    count_all,
    iter_batches,
    parquet_files,
    run_pipeline,
    settle_heap,
    text_bytes,
)
from pipelines.manifest import RunOptions, sha256_file
from pipelines.progress import Reporter
from pipelines.recipe import LABELLED_KINDS, CleanConfig, CleanRuleOverride
from pipelines.schema import ARROW_SCHEMA, REJECTED_SCHEMA, Document, dump_meta

NAME = "clean"
PROGRESS_INPUT = "ingest"
VERSION = 21  # 21: C1 controls become the Windows-1252 characters they stand for (dashes,
# quotes, ellipses in Windows-1252 text read as Latin-1), not deleted; 20: ftfy repairs the
# lines with a mojibake hint, not the whole text (a hinted text's other lines keep their C1
# controls and U+2028 for the steps after, as an unhinted text);
# 19: the alpha-word ratio leaves numbers out; Sieve's zh/ja n-gram departures
# from FineWeb-2 (data/language_departures.json); gambling-spam terms for zh (data/spam_words.json);
# 18: C4's removed lines in meta.cleaning are screened for an IPv6 address that
# starts with a hex letter too (abcd:ef01:...: the screen missed it, and it was left unredacted);
# 17: Gopher's end-ellipsis share needs at least 2 such lines (min_ellipsis_lines);
# 16: FineWeb's line punctuation reads a line ending in ".." as cut off, not ended;
# 15: C4 reads a mark before closing quotes and brackets as a line's end (.” ?» .));
# 14: C4's page minimum 3 sentences (TFDS's; the paper's 5 dropped news briefs),
# FineWeb's list ratio counts line breaks, not newlines (a blank line is one break);
# 13: FineWeb's line punctuation reads a bulleted list as one line, and a line of
# three or more sentences as ended (quality.line_punct_ratio);
# 12: c4:mostly_removed (a page whose lines C4 removed for most of its text),
# bad_words:too_many (LDNOOBW v2 at word boundaries, zh/ja/ko/th);
# 7: thresholds per language (FineWeb-2's, recipe overrides), words per language;
# 8: the alpha-word ratio over words, line ends through closing marks, splitter words compiled
# for zh/ja/ko/th, C4 off where FineWeb-2 has it off; meta.thresholds in rejected rows;
# 6: compiled rules; language by fastText lid.176; the failing statistic and its
# threshold in rejected rows (meta.rule_value, meta.rule_threshold);
# 5: spacing normalised before the mojibake repair too (idempotent);
# 3: mojibake, C4 / Gopher / FineWeb rules, PII redaction, blocklist, per-source;
# 4: mojibake_fixed counts only repairs that change the normalised text;
# 9: `enabled = false` passes documents through as ingested (the raw arm of an ablation);
# 10: kept documents record what cleaning changed (meta.cleaning: C4's removed lines, PII spans)
# 11: removed lines aligned in one pass where C4 only removed lines (where lines repeat, a
# removed copy may be named at another of its places than difflib chose)


class EmptiedSplit(RuntimeError):
    """The rules dropped every document of a split that must not be emptied."""


def fingerprint(cfg: CleanConfig) -> dict:
    """Part of the stage key beyond the recipe section: the blocklist's content (an edited list
    rebuilds), each source's resolved rules (the built-in per-kind defaults live in code) and
    the shipped per-language data (FineWeb-2's thresholds, Sieve's departures, the spam terms:
    an edited file rebuilds)."""
    return {"blocklist_sha256": sha256_file(Path(cfg.blocklist)) if cfg.blocklist else None,
            "rules": {source: cfg.rules_for(source).model_dump(mode="json")
                      for source in sorted(cfg.source_kinds)},
            "language_data_sha256": {path.name: sha256_file(path) for path in (
                languages.RULES_FILE, languages.DEPARTURES_FILE, languages.SPAM_WORDS_FILE)}}


class Cleaner:
    """The clean decisions for record batches, outside Beam (tests and benchmarks call it too):
    `judge(table) -> (kept table, rejected table, counters)`, compiled: the text stays UTF-8 and
    code points from the Arrow column to the written one, and Python strings are made only
    where a step needs one (ftfy and NFC on non-ASCII text, the language ID's prefix, PII on
    texts that could hold some). `judge_reference` is the same, document by document, with the
    pure-Python functions: the definition the compiled path is tested against."""

    def __init__(self, cfg: CleanConfig, blocklist: quality.Blocklist | None) -> None:
        self.cfg = cfg
        self.blocklist = blocklist
        self._rules: dict[str, CleanRuleOverride] = {}
        self._lists: dict[tuple[str, ...], int] = {}
        self._plans: dict[tuple[int, int], tuple[tuple[str, ...], bool, int, bool]] = {}
        self._languages: dict[str, languages.LanguageRules] = {}
        # One compiled kernel per set of thresholds: `[clean]`'s, and each language's own.
        self._kernels: dict[str, quality_kernels.RuleKernel] = {}
        self.kernel = self.kernel_for(self.language_rules(""))

    def language_rules(self, lang: str) -> languages.LanguageRules:
        if lang not in self._languages:
            self._languages[lang] = self.cfg.rules_for_language(lang)
        return self._languages[lang]

    def kernel_for(self, lr: languages.LanguageRules) -> quality_kernels.RuleKernel:
        key = "" if lr.origin == "default" else lr.language
        if key not in self._kernels:
            self._kernels[key] = quality_kernels.RuleKernel(lr)
        return self._kernels[key]

    def list_index(self, names: tuple[str, ...]) -> int:
        return self._lists.setdefault(names, len(self._lists))

    def rules(self, source: str) -> CleanRuleOverride:
        if source not in self._rules:
            self._rules[source] = self.cfg.rules_for(source)
        return self._rules[source]

    def judge(self, table: pa.Table) -> tuple[pa.Table, pa.Table, Counter]:
        cfg = self.cfg
        n = table.num_rows
        counts: Counter = Counter()
        sources = table.column("source").to_pylist()
        splits = table.column("split").to_pylist()
        if not cfg.enabled:  # the raw arm: every document as ingested
            for source, split in zip(sources, splits, strict=True):
                counts[f"source:{source}:{split}:in"] += 1
                counts[f"source:{source}:{split}:out"] += 1
            counts["in"] = counts["out"] = n
            return (table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA),
                    REJECTED_SCHEMA.empty_table(), counts)
        metas = [json.loads(m) if m else {} for m in table.column("meta").to_pylist()]
        rules = [self.rules(s) for s in sources]

        # Normalise: the compiled first half for every text, the Python second half (ftfy, C1,
        # NFC) only for the texts it could change: with a mojibake hint, a C1 character or a
        # character NFC may change (the kernel tells; most non-ASCII text has none).
        chars, offsets = quality_kernels.decode_utf8(table.column("text"))
        text, starts, ends, finish = quality_kernels.prepare_batch(chars, offsets)
        replaced: dict[int, str] = {}
        for d in np.flatnonzero(finish).tolist():
            prepared = quality_kernels.decode(text, starts[d], ends[d])
            finished, fixed = filters.finish(prepared, cfg.fix_mojibake)
            counts["mojibake_fixed"] += fixed
            if finished != prepared:
                replaced[d] = finished
        text, starts, ends = _replace(text, starts, ends, replaced)

        languages_, scores = langid.identify_code_points(text, starts, ends)
        lengths = (ends - starts).tolist()
        reasons: list[str | None] = [None] * n
        lists = np.full(n, -1, dtype=np.int64)
        groups: dict[str, list[int]] = {}  # kernel key -> documents it judges
        spans: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # a splitter's, for the kernel
        segmented: list[int] = []  # the splitter's words with C4 first: the Python rules
        bad_words: list[int] = []  # documents the bad-words rule applies to
        doc_rules: list[languages.LanguageRules] = []
        counts.update(f"lang:{lang}:in" for lang in languages_)
        script_checked = languages.SCRIPT_CHECKED
        plans = self._plans
        for d in range(n):
            meta, r, lang = metas[d], rules[d], languages_[d]
            meta["language"], meta["language_score"] = lang, scores[d]
            lr = self.language_rules(languages.rules_language(lang, text[starts[d]:ends[d]])
                                     if lang in script_checked else lang)
            doc_rules.append(lr)
            reason = None
            if self.blocklist is not None:
                url = meta.get("url")
                domain = meta.get("domain") or (urlsplit(url).hostname if url else None)
                reason = self.blocklist.reason(url, domain)
            if reason is None and lengths[d] < r.min_chars:
                reason = "too_short"
            if reason is None and r.languages and (
                    languages_[d] not in r.languages or scores[d] < (
                        cfg.min_language_score if lr.language_score is None
                        else lr.language_score)):
                reason = "language"
            reasons[d] = reason
            # (the rule sets, whether bad words run, the kernel's list index, segmented) per
            # language and source rules: the same for most documents of a batch
            plan = plans.get((id(lr), id(r)))  # both live as long as this Cleaner
            if plan is None:
                names = lr.filters(r.filters)
                quality_names = _quality_rules(names)
                plan = plans[(id(lr), id(r))] = (
                    quality_names, "bad_words" in names,
                    self.list_index(quality_names) if quality_names else -1,
                    languages.segmented(lr.language))
            names, has_bad_words, list_index, is_segmented = plan
            if has_bad_words:
                bad_words.append(d)
            if reason is None and names:
                lists[d] = list_index
                if is_segmented:
                    # The splitter's words, once; the kernel takes them where no C4 runs
                    # first (C4 rewrites the text they point into).
                    if "c4" in names:
                        segmented.append(d)
                        continue
                    spans[d] = languages.word_spans(
                        quality_kernels.decode(text, starts[d], ends[d]), lr.language,
                        text[starts[d]:ends[d]])
                groups.setdefault("" if lr.origin == "default" else lr.language,
                                  []).append(d)

        # The quality rules, compiled, in each source's order, with each language's thresholds.
        order = list(self._lists)
        parts = []
        for key, idx in groups.items():
            kernel = self.kernel_for(doc_rules[idx[0]])
            if key == "" or len(idx) == n:  # `[clean]`'s thresholds: most documents, in place
                given = [spans.get(d) for d in range(n)] if spans else None
                parts.append((kernel.judge_segments(text, starts, ends, order,
                                                    _only(lists, idx), given), idx))
            else:  # a language's own: its documents alone (the kernel's buffers are their size)
                sub, sub_starts, sub_ends = _gather(text, starts, ends, idx)
                given = [spans.get(d) for d in idx] if spans else None
                parts.append((kernel.judge_segments(sub, sub_starts, sub_ends, order,
                                                    lists[idx], given), None, idx))
        judged = _merge_judgements(n, parts)
        final = text
        f_starts, f_ends = starts.copy(), ends.copy()
        changed = np.flatnonzero(judged.out_starts >= 0)
        if len(changed):  # C4 removed lines: those texts are now in judged.out
            # Only their pieces are appended: judged.out is as long as the batch, mostly
            # never written.
            lengths = judged.out_ends[changed] - judged.out_starts[changed]
            f_ends[changed] = len(text) + np.cumsum(lengths)
            f_starts[changed] = f_ends[changed] - lengths
            final = np.concatenate([text] + [judged.out[a:b] for a, b in zip(
                judged.out_starts[changed].tolist(), judged.out_ends[changed].tolist(),
                strict=True)])
            counts["c4_lines_removed"] += int(judged.lines_removed.sum())
        removed: dict[int, list[list]] = {}  # C4's removed lines of the kept documents
        for d in range(n):
            if reasons[d] is None and judged.reasons[d] is not None:
                reasons[d] = judged.reasons[d]
                metas[d]["rule_value"] = round(float(judged.values[d]), 4)
                metas[d]["rule_threshold"] = round(float(judged.thresholds[d]), 4)
        # Languages written without spaces, where C4 runs before the other rules: their
        # splitter's words, the Python rules.
        cleaned: dict[int, str] = {}
        for d in segmented:
            lr = doc_rules[d]
            before = quality_kernels.decode(text, starts[d], ends[d])
            after, reason = _judge_words(before, order[lists[d]], lr, metas[d])
            if reason is not None:
                reasons[d] = reason
            elif after != before:
                counts["c4_lines_removed"] += before.count("\n") - after.count("\n")
                cleaned[d] = after
                if lines := removed_lines(before, after):
                    removed[d] = lines
            lists[d] = -1  # no kernel hints: PII below screens the final text itself
        final, f_starts, f_ends = _replace(final, f_starts, f_ends, cleaned)
        self._judge_bad_words([d for d in bad_words if reasons[d] is None], final, f_starts,
                              f_ends, doc_rules, spans, reasons, metas)
        c4_kept = []  # kept documents that went through the kernel's C4 and lost characters
        out_starts = judged.out_starts.tolist()
        # C4 only takes characters out (a line break of two becomes one), so a text as long
        # after it as before lost no line.
        shortened = ((f_ends - f_starts) != (ends - starts)).tolist()
        for d in range(n):
            if reasons[d] is None:
                if out_starts[d] >= 0 and shortened[d]:
                    c4_kept.append(d)
            elif reasons[d].split(":")[0] in _RULE_SETS:
                metas[d]["thresholds"] = f"{doc_rules[d].language or 'default'}:" \
                                         f"{doc_rules[d].origin}"
        # Their removed lines, found without decoding the texts; where C4 rewrote a line,
        # aligned by `removed_lines` (difflib).
        for d, lines in zip(c4_kept, quality_kernels.removed_lines(
                text, starts[c4_kept], ends[c4_kept], final, f_starts[c4_kept],
                f_ends[c4_kept]), strict=True):
            if lines is None:
                lines = removed_lines(quality_kernels.decode(text, starts[d], ends[d]),
                                      quality_kernels.decode(final, f_starts[d], f_ends[d]))
            if lines:
                removed[d] = lines

        # PII in the kept texts, by regular expression where the hints (the kernel's, or for
        # the texts it did not judge, the same screen's on the final text) allow a match.
        hints = judged.pii_hints.copy()
        unjudged = np.flatnonzero((lists < 0) & np.array([r is None for r in reasons], bool))
        hints[unjudged] = quality_kernels.pii_hints(final, f_starts[unjudged], f_ends[unjudged])
        redacted: dict[int, str] = {}
        spans: dict[int, list[quality.Redaction]] = {}
        for d, hint in enumerate(hints.tolist()):
            if not hint or reasons[d] is not None or not rules[d].pii:
                continue
            kinds = [k for k in rules[d].pii if hint & _PII_HINTS[k]]
            if not kinds:
                continue
            before = quality_kernels.decode(final, f_starts[d], f_ends[d])
            after, found, spans[d] = quality.redact_pii_spans(before, kinds)
            for kind, value in found.items():
                counts[f"pii:{kind}"] += value
                counts[f"source:{sources[d]}:pii:{kind}"] += value
            if after != before:
                redacted[d] = after
        final, f_starts, f_ends = _replace(final, f_starts, f_ends, redacted)
        for d in set(removed) | {d for d, found in spans.items() if found}:
            metas[d]["cleaning"] = cleaning_meta(removed.get(d, []), spans.get(d, []),
                                                 rules[d].pii)

        kept_idx = [d for d in range(n) if reasons[d] is None]
        rejected_idx = [d for d in range(n) if reasons[d] is not None]
        counts.update(f"lang:{languages_[d]}:out" for d in kept_idx)
        counts["in"] += n
        counts["out"] += len(kept_idx)
        for (source, split), k in Counter(zip(sources, splits, strict=True)).items():
            counts[f"source:{source}:{split}:in"] += k
        for (source, split), k in Counter((sources[d], splits[d]) for d in kept_idx).items():
            counts[f"source:{source}:{split}:out"] += k
        for (source, reason), k in Counter((sources[d], reasons[d])
                                           for d in rejected_idx).items():
            counts[reason if reason.startswith("error:") else f"dropped:{reason}"] += k
            counts[f"source:{source}:dropped:{reason}"] += k
        meta_strings = [dump_meta(m) for m in metas]
        kept = _rows(table, kept_idx, quality_kernels.encode_utf8(
            final, f_starts[kept_idx], f_ends[kept_idx]), [meta_strings[d] for d in kept_idx])
        rejected = _rows(table, rejected_idx, quality_kernels.encode_utf8(
            text, starts[rejected_idx], ends[rejected_idx]),
            [meta_strings[d] for d in rejected_idx])
        rejected = rejected.append_column(
            "reason", pa.array([reasons[d] for d in rejected_idx], pa.string()))
        return kept.cast(ARROW_SCHEMA), rejected.cast(REJECTED_SCHEMA), counts

    @staticmethod
    def _judge_bad_words(idx: list[int], final: np.ndarray, f_starts: np.ndarray,
                         f_ends: np.ndarray, doc_rules: list[languages.LanguageRules],
                         spans: dict[int, tuple[np.ndarray, np.ndarray]],
                         reasons: list[str | None], metas: list[dict]) -> None:
        """The bad-words rule on the kept documents `idx`: per language, a substring screen of
        them all at once (RE2, through pyarrow), then the word-boundary count
        (`LanguageRules.bad_words_reason`) for those the screen found a listed word in."""
        by_language: dict[str, list[int]] = {}
        for d in idx:
            by_language.setdefault(doc_rules[d].language, []).append(d)
        for group in by_language.values():
            lr = doc_rules[group[0]]
            texts = [quality_kernels.decode(final, f_starts[d], f_ends[d]) for d in group]
            screen = pc.match_substring_regex(pa.array(texts, pa.string()),
                                              languages.bad_word_pattern(lr.bad_words),
                                              ignore_case=True).to_pylist()
            for d, text, maybe in zip(group, texts, screen, strict=True):
                if not maybe:
                    continue
                # The splitter's words where the kernel had them (no C4 ran: the same text).
                starts, ends = (spans[d] if d in spans
                                else languages.word_spans(text, lr.language))
                found = lr.bad_words_reason(text, starts, ends)
                if found is not None:
                    reasons[d] = BAD_WORDS_REASON
                    _record_bad_words(metas[d], found, lr)

    def judge_reference(self, table: pa.Table) -> tuple[pa.Table, pa.Table, Counter]:
        """`judge`, one document at a time with the pure-Python rules (the definition)."""
        counts: Counter = Counter()
        kept, rejected = [], []
        for row in table.to_pylist():
            new, reason = self.judge_row(row, counts)
            if reason is None:
                kept.append(new)
            else:
                rejected.append({**new, "reason": reason})
        return (pa.Table.from_pylist(kept, ARROW_SCHEMA),
                pa.Table.from_pylist(rejected, REJECTED_SCHEMA), counts)

    def judge_row(self, row: dict, counts: Counter) -> tuple[dict, str | None]:
        doc = Document.from_row(row)
        rules = self.rules(doc.source)
        doc.text, fixed = filters.normalize_counted(doc.text, self.cfg.fix_mojibake)
        if fixed:
            counts["mojibake_fixed"] += 1
        doc.meta["language"], doc.meta["language_score"] = filters.identify_language(doc.text)
        lr = self.language_rules(languages.rules_language(doc.meta["language"], doc.text))
        counts[f"lang:{doc.meta['language']}:in"] += 1
        reason = None
        if self.blocklist is not None:
            url = doc.meta.get("url")
            domain = doc.meta.get("domain") or (urlsplit(url).hostname if url else None)
            reason = self.blocklist.reason(url, domain)
        reason = (reason or filters.too_short(doc, rules.min_chars)
                  or filters.wrong_language(doc, rules.languages, self.cfg.min_language_score
                                            if lr.language_score is None else lr.language_score))
        names = lr.filters(rules.filters)
        quality_rules = _quality_rules(names)
        removed: list[list] = []
        if reason is None and quality_rules:
            cleaned, reason = _judge_words(doc.text, quality_rules, lr, doc.meta)
            if reason is None:
                if cleaned != doc.text:  # C4 removed lines
                    counts["c4_lines_removed"] += doc.text.count("\n") - cleaned.count("\n")
                    removed = removed_lines(doc.text, cleaned)
                doc.text = cleaned
            else:
                doc.meta["thresholds"] = f"{lr.language or 'default'}:{lr.origin}"
        if reason is None and "bad_words" in names:
            found = lr.bad_words_reason(doc.text, *languages.word_spans(doc.text, lr.language))
            if found is not None:
                reason = BAD_WORDS_REASON
                _record_bad_words(doc.meta, found, lr)
        prefix = f"source:{doc.source}"
        counts["in"] += 1
        counts[f"{prefix}:{doc.split}:in"] += 1
        if reason is None:
            spans: list[quality.Redaction] = []
            if rules.pii:
                doc.text, found, spans = quality.redact_pii_spans(doc.text, rules.pii)
                for kind, n in found.items():
                    counts[f"pii:{kind}"] += n
                    counts[f"{prefix}:pii:{kind}"] += n
            if removed or spans:
                doc.meta["cleaning"] = cleaning_meta(removed, spans, rules.pii)
            counts["out"] += 1
            counts[f"{prefix}:{doc.split}:out"] += 1
            counts[f"lang:{doc.meta['language']}:out"] += 1
        else:
            counts[reason if reason.startswith("error:") else f"dropped:{reason}"] += 1
            counts[f"{prefix}:dropped:{reason}"] += 1
        return doc.to_row(), reason


def removed_lines(before: str, after: str) -> list[list]:
    """What C4's line rules took out of a kept document: [at, line] for each non-blank line of
    `before` that is not in `after` as it was (a line C4 rewrote, its citations removed, counts
    as removed, shown before its new form), `at` the code-point offset in `after` it stood at."""
    new = after.split("\n")
    stripped = [line.strip() for line in before.splitlines()]
    out = []
    # Most kept documents lost whole lines only: their lines are an in-order subsequence of the
    # page's, found in one pass (difflib's alignment cost 9% of the clean stage's time).
    j, at, n_new, size = 0, 0, len(new), len(after)  # at: where new[j] starts in `after`
    for bare in stripped:
        if j < n_new and new[j] == bare:
            at += len(bare) + 1
            j += 1
        elif bare:
            out.append([min(at, size), bare])
    if j == n_new:
        return out
    offsets = list(itertools.accumulate((len(line) + 1 for line in new), initial=0))
    out = []  # a line C4 rewrote (citations removed): align the lines
    matcher = difflib.SequenceMatcher(None, stripped, new, autojunk=False)
    for op, i1, i2, j1, _ in matcher.get_opcodes():
        if op in ("delete", "replace"):
            at = min(offsets[j1], len(after))
            out += [[at, line] for line in stripped[i1:i2] if line]
    return out


def cleaning_meta(removed: list[list], spans: list[quality.Redaction], pii: tuple[str, ...]
                  ) -> dict[str, list]:
    """`meta.cleaning` of a kept document, offsets in code points of its final text:
    `removed_lines` [at, line] (C4's, their own PII redacted too: no address survives in the
    meta) and `redacted` [start, end, kind] (each placeholder)."""
    out: dict[str, list] = {}
    if removed:
        lines = []
        # One search over all the lines first: most removed lines (menus, dates) hold nothing
        # any pattern could match. No screened form spans a line end.
        screen = pii and _MAY_HOLD_PII.search("\n".join(line for _, line in removed))
        for at, line in removed:
            shift = sum(b - a - (e - s) for s, e, a, b, _ in spans if e <= at) if spans else 0
            lines.append([at + shift, quality.redact_pii(line, pii)[0]
                          if screen and _MAY_HOLD_PII.search(line) else line])
        out["removed_lines"] = lines
    if spans:
        out["redacted"] = [[a, b, kind] for _, _, a, b, kind in spans]
    return out


_PII_HINTS = {"email": 1, "ip": 2 | 4, "phone": 8}  # quality_kernels._pii_hints bits
# Every PII pattern in quality.py needs one of these, the hints of quality_kernels._pii_hints
# as text: an e-mail's "@"; an IPv6 address's "::" or two colons between hex digits; an IPv4
# address's four dotted numbers; a phone number's last two groups (3 digits, " .-", 4 digits)
# or its leading "+" and digit. A removed line without any is left as it is, without running
# the patterns. Each form starts with one of @ : + or a digit (IPv6's two groups "h:h:" hold
# ":h:"; the form once began at the hex digit before it, which a letter skipped past).
# (The lookahead of first characters lets the engine skip the rest: 2.5x faster on the lines.)
_MAY_HOLD_PII = re.compile(r"(?=[@:+\d])(?:@|::|:[0-9A-Fa-f]{1,4}:"
                           r"|\d\.\d{1,3}\.\d{1,3}\.\d|\d{3}[ .-]\d{4}|\+\d)")
_RULE_SETS = frozenset(quality_kernels.RULE_CODES)
BAD_WORDS_REASON = "bad_words:too_many"


def _quality_rules(names: tuple[str, ...]) -> tuple[str, ...]:
    """The rule sets the kernel and `_judge_words` run: all but the bad-words rule, which runs
    after them on what they keep."""
    return tuple(n for n in names if n != "bad_words")


def _record_bad_words(meta: dict, found: tuple[float, list[str]],
                      lr: languages.LanguageRules) -> None:
    meta["rule_value"] = round(found[0], 4)
    meta["rule_threshold"] = lr.bad_words_min_word_frac
    meta["bad_words"] = found[1][:10]
    meta["thresholds"] = f"{lr.language}:bad_words"


def _judge_words(text: str, names: tuple[str, ...], lr: languages.LanguageRules, meta: dict
                 ) -> tuple[str, str | None]:
    """The Python rules with the language's words and thresholds: (text after C4, reason); a
    dropped text's failing statistic and threshold go into `meta`."""
    def tokenize(t: str) -> list[str]:
        return languages.words(t, lr.language)
    cleaned, reason = filters.apply_quality(text, names, lr, tokenize)
    if reason is not None:
        value, threshold = quality.explain(reason, cleaned, lr, tokenize(cleaned))
        meta["rule_value"] = round(float(value), 4)
        meta["rule_threshold"] = round(float(threshold), 4)
    return cleaned, reason


def _gather(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray, idx: list[int]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The documents idx as their own code point buffer and segments."""
    pieces = [chars[starts[d]:ends[d]] for d in idx]
    lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    sub_ends = np.cumsum(lengths)
    sub = np.concatenate(pieces) if pieces else np.empty(0, dtype=chars.dtype)
    return sub, sub_ends - lengths, sub_ends


def _only(lists: np.ndarray, idx: list[int]) -> np.ndarray:
    """`lists` with every document but `idx` unjudged (-1)."""
    out = np.full(len(lists), -1, dtype=np.int64)
    out[idx] = lists[idx]
    return out


def _merge_judgements(n: int, parts: list[tuple]) -> quality_kernels.Judgement:
    """One Judgement from kernels that each judged some documents: `(judgement, idx)` where
    the judgement is over the whole batch, `(judgement, None, idx)` where it is over the
    documents idx alone, in that order (C4's outputs joined, their offsets moved)."""
    if len(parts) == 1 and len(parts[0]) == 2:
        return parts[0][0]
    reasons: list[str | None] = [None] * n
    out_starts = np.full(n, -1, dtype=np.int64)
    out_ends = np.full(n, -1, dtype=np.int64)
    values, thresholds = np.zeros(n), np.zeros(n)
    hints = np.zeros(n, dtype=np.int64)
    lines_removed = np.zeros(n, dtype=np.int64)
    pieces, base = [], 0  # only the texts C4 changed
    for part in parts:
        j, idx = part[0], part[-1]
        where = np.asarray(idx, dtype=np.int64)
        local = where if len(part) == 2 else np.arange(len(idx), dtype=np.int64)
        for d, k in zip(idx, local.tolist(), strict=True):
            reasons[d] = j.reasons[k]
        values[where], thresholds[where] = j.values[local], j.thresholds[local]
        hints[where] = j.pii_hints[local]
        lines_removed[where] = j.lines_removed[local]
        for d, k in zip(where.tolist(), local.tolist(), strict=True):
            a = j.out_starts[k]
            if a < 0:
                continue
            b = j.out_ends[k]
            pieces.append(j.out[a:b])
            out_starts[d], out_ends[d] = base, base + (b - a)
            base += b - a
    out = np.concatenate(pieces) if pieces else np.empty(1, dtype=np.uint32)
    return quality_kernels.Judgement(reasons, out, out_starts, out_ends, values, thresholds,
                                     hints, lines_removed)


def _replace(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray, texts: dict[int, str]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point the given documents' segments at new texts: written over the old one where it
    fits (the repairs and most redactions shorten a text), else appended to the code points
    (one copy of the buffer for all of those)."""
    if not texts:
        return chars, starts, ends
    extra, offsets = quality_kernels.encode(list(texts.values()))
    starts, ends = starts.copy(), ends.copy()
    longer = []
    for k, d in enumerate(texts):
        n = offsets[k + 1] - offsets[k]
        if n <= ends[d] - starts[d]:
            chars[starts[d]: starts[d] + n] = extra[offsets[k]: offsets[k + 1]]
            ends[d] = starts[d] + n
        else:
            longer.append((k, d))
    if longer:
        base = len(chars)
        chars = np.concatenate([chars, extra])
        for k, d in longer:
            starts[d], ends[d] = base + offsets[k], base + offsets[k + 1]
    return chars, starts, ends


def _rows(table: pa.Table, idx: list[int], text: pa.Array, metas: list[str]) -> pa.Table:
    """The rows idx of table (id, source, split) with the given text and meta."""
    taken = table.select(["id", "source", "split"]).take(pa.array(idx, pa.int64()))
    return taken.append_column("text", text).append_column("meta", pa.array(metas, pa.string()))


class CleanFile(beam.DoFn):
    """(index, ingest file) -> the same-named file in `docs/` and `rejected/`, batch by batch."""

    def __init__(self, cfg: CleanConfig, blocklist: quality.Blocklist | None, out: str,
                 progress_dir: str | None) -> None:
        self.cfg, self.blocklist, self.out, self.progress_dir = cfg, blocklist, out, progress_dir

    def setup(self) -> None:
        self.cleaner = Cleaner(self.cfg, self.blocklist)
        self.progress = Reporter(self.progress_dir)
        settle_heap()

    def process(self, element: tuple[int, str]) -> Iterator[str]:
        _, path = element
        sinks = DocumentSinks(self.out, basename(path))
        for table in iter_batches(path):
            kept, rejected, counts = self.cleaner.judge(table)
            sinks.write(kept, rejected)
            counts["text_bytes"] = text_bytes(table)
            count_all(NAME, counts)
            self.progress.advance(docs=table.num_rows, nbytes=counts["text_bytes"])
        self.progress.advance(files=1)
        self.progress.flush()
        yield from sinks.close()

    def teardown(self) -> None:  # a worker that lives on (a portable pool) ends its children
        languages.release_splitters()


def check_splits(cfg: CleanConfig, counters: dict[str, int]) -> None:
    """Fail when a labelled source's split, or any validation/test split, was emptied."""
    for key, n in counters.items():
        parts = key.split(":")
        if len(parts) != 4 or parts[0] != "source" or parts[3] != "in" or not n:
            continue
        source, split = parts[1], parts[2]
        kind = cfg.source_kinds.get(source, source)
        if counters.get(f"source:{source}:{split}:out", 0) == 0 and (
                kind in LABELLED_KINDS or split in ("validation", "test")):
            reasons = {k.split(":dropped:", 1)[1]: v for k, v in counters.items()
                       if k.startswith(f"source:{source}:dropped:")}
            raise EmptiedSplit(
                f"stage clean: every one of the {n:,} documents of {source}/{split} was "
                f"dropped (reasons for {source}: {reasons}); set [clean.sources.{source}] "
                f"rules that keep them, e.g. filters = []")


def run(cfg: CleanConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    blocklist = quality.Blocklist.from_file(cfg.blocklist) if cfg.blocklist else None

    files = parquet_files(str(inputs["ingest"]))

    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | "Read" >> ReadFiles(files)  # (index, path)
            | "Clean" >> beam.ParDo(CleanFile(cfg, blocklist, str(out), options.progress_dir))
        )

    counters = run_pipeline(build, options, NAME)
    check_document_outputs(NAME, str(out), counters)
    check_splits(cfg, counters)
    return counters


def reason_table(counters: dict[str, int]) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """(source names, rows): for each source the documents in, kept, and dropped per reason;
    rows are ("in", [...]), ("kept", [...]) and then each reason, most frequent first. The build
    prints it and the data card shows it."""
    sources = sorted({k.split(":")[1] for k in counters if k.startswith("source:")})
    def total(source: str, what: str) -> int:
        return sum(v for k, v in counters.items()
                   if k.startswith(f"source:{source}:") and k.endswith(f":{what}")
                   and k.count(":") == 3 and k.split(":")[2] != "pii")
    reasons = sorted({k.split(":dropped:", 1)[1] for k in counters if ":dropped:" in k},
                     key=lambda r: (-counters.get(f"dropped:{r}", 0), r))  # ties by name
    rows = [("in", [total(s, "in") for s in sources]),
            ("kept", [total(s, "out") for s in sources])]
    rows += [(r, [counters.get(f"source:{s}:dropped:{r}", 0) for s in sources]) for r in reasons]
    return sources, rows
