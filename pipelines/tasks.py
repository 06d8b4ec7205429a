"""Tasks stage: the labelled sets as `datasets` DatasetDicts with their published splits.

Contract: `run(cfg: TasksConfig, {"ingest": docs, "tokenizer": model}, out, options) -> counters`.
Labelled data is taken from the ingest output, not from clean/dedup: its published splits must
reach fine-tuning and evaluation untouched.
- `out/imdb/`: `id`, `text`, `label` (ClassLabel neg/pos; -1 for `unsup`), `rating`, and the model
  inputs `input_ids` = <s> + pieces + </s>, truncated to `max_length`.
- `out/conll2003/`: `id`, `tokens`, `pos_tags`, `chunk_tags`, `ner_tags` (ClassLabel with the
  tag names), `doc_index`, and `input_ids` / `labels` / `word_ids` made with the trained
  tokenizer: each word's first piece carries its tag, continuation pieces and <s>/</s> get -100.
- `out/<source>/` for every other labelled source (the `classification` and `conll` kinds):
  `id`, `text`, `label` (ClassLabel of the label names found, sorted), `input_ids`; or `id`,
  `tokens`, `ner_tags` (ClassLabel: O, then B-/I- per entity type), `input_ids`, `labels`,
  `word_ids`, aligned as CoNLL-2003's.
All load with `datasets.load_from_disk(path)`, or per split with
`datasets.load_dataset("arrow", data_files=...)`. A CoNLL tag outside the tag set is an error
naming the document.
Reference: the `imdb` and `conll2003` datasets on the Hugging Face Hub use these label orders.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from pathlib import Path

import datasets

from pipelines.io import iter_batches, num_rows, parquet_files, source_files
from pipelines.manifest import RunOptions
from pipelines.recipe import TasksConfig
from tokenizer import spm

NAME = "tasks"
VERSION = 3  # 2: stable fingerprints (byte-identical outputs); 3: a task per labelled source

IMDB_LABELS = ["neg", "pos"]
NER_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
IGNORE_INDEX = -100


class UnknownTagError(ValueError):
    pass


def imdb_features() -> datasets.Features:
    return datasets.Features({
        "id": datasets.Value("string"), "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=IMDB_LABELS), "rating": datasets.Value("int32"),
        "input_ids": datasets.Sequence(datasets.Value("int32")),
    })


def conll_features() -> datasets.Features:
    strings = datasets.Sequence(datasets.Value("string"))
    ints = datasets.Sequence(datasets.Value("int32"))
    return datasets.Features({
        "id": datasets.Value("string"), "tokens": strings, "pos_tags": strings,
        "chunk_tags": strings, "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NER_TAGS)),
        "doc_index": datasets.Value("int32"), "input_ids": ints, "labels": ints, "word_ids": ints,
    })


def imdb_example(row: dict, meta: dict, sp, max_length: int) -> dict:
    pieces = sp.encode(row["text"])[: max_length - 2]
    label = -1 if row["split"] == "unsup" else IMDB_LABELS.index(meta["label"])
    return {"id": row["id"], "text": row["text"], "label": label, "rating": meta["rating"],
            "input_ids": [spm.BOS_ID, *pieces, spm.EOS_ID]}


def align_labels(word_pieces: list[list[int]], tags: list[int],
                 max_length: int) -> tuple[list[int], list[int], list[int]]:
    """<s> + pieces + </s>; the first piece of each word carries its tag, the rest -100."""
    input_ids, labels, word_ids = [spm.BOS_ID], [IGNORE_INDEX], [-1]
    for word, (pieces, tag) in enumerate(zip(word_pieces, tags, strict=True)):
        for k, piece in enumerate(pieces):
            input_ids.append(piece)
            labels.append(tag if k == 0 else IGNORE_INDEX)
            word_ids.append(word)
    input_ids, labels, word_ids = (x[: max_length - 1] for x in (input_ids, labels, word_ids))
    return input_ids + [spm.EOS_ID], labels + [IGNORE_INDEX], word_ids + [-1]


def conll_example(row: dict, meta: dict, sp, max_length: int) -> dict:
    try:
        tags = [NER_TAGS.index(tag) for tag in meta["ner_tags"]]
    except ValueError:
        unknown = sorted(set(meta["ner_tags"]) - set(NER_TAGS))
        raise UnknownTagError(f"{row['id']}: NER tags {unknown} are not in {NER_TAGS}") from None
    input_ids, labels, word_ids = align_labels(sp.encode(meta["tokens"]), tags, max_length)
    return {"id": row["id"], "tokens": meta["tokens"], "pos_tags": meta["pos_tags"],
            "chunk_tags": meta["chunk_tags"], "ner_tags": tags, "doc_index": meta["doc_index"],
            "input_ids": input_ids, "labels": labels, "word_ids": word_ids}


def classification_features(names: list[str]) -> datasets.Features:
    return datasets.Features({
        "id": datasets.Value("string"), "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=names),
        "input_ids": datasets.Sequence(datasets.Value("int32")),
    })


def ner_features(tags: list[str]) -> datasets.Features:
    ints = datasets.Sequence(datasets.Value("int32"))
    return datasets.Features({
        "id": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=tags)),
        "input_ids": ints, "labels": ints, "word_ids": ints,
    })


def tag_order(tags: set[str]) -> list[str]:
    """A tag set as ClassLabel names: O first, then per entity type its B- and I- tags."""
    kinds = sorted({t[2:] for t in tags if t != "O"})
    return ["O"] + [f"{p}-{k}" for k in kinds for p in ("B", "I")]


def classification_example(row: dict, meta: dict, sp, max_length: int) -> dict:
    pieces = sp.encode(row["text"])[: max_length - 2]
    return {"id": row["id"], "text": row["text"], "label": meta["label"],
            "input_ids": [spm.BOS_ID, *pieces, spm.EOS_ID]}


def ner_example(row: dict, meta: dict, sp, max_length: int) -> dict:
    """Tags stay names here; `run` maps them to the tag set it found in the source."""
    input_ids, labels, word_ids = align_labels(
        sp.encode(meta["tokens"]), list(range(len(meta["tokens"]))), max_length)
    return {"id": row["id"], "tokens": meta["tokens"], "ner_tags": meta["ner_tags"],
            "input_ids": input_ids, "labels": labels, "word_ids": word_ids}


def _names_to_ids(task_type: str, rows: list[dict], names: list[str]) -> None:
    """Labels and tags (names) -> their ids in `names`, in place; `labels` from word
    positions (ner_example puts each word's index on its first piece) to the word's tag."""
    index = {name: k for k, name in enumerate(names)}
    for r in rows:
        if task_type == "classification":
            r["label"] = index[r["label"]]
        else:
            tags = [index[t] for t in r["ner_tags"]]
            r["labels"] = [tags[w] if w != IGNORE_INDEX else IGNORE_INDEX for w in r["labels"]]
            r["ner_tags"] = tags


def _stable_fingerprint(split_dir: Path) -> None:
    """`datasets` stores a random fingerprint in state.json; make it the data's own hash so that
    the same inputs give byte-identical output (it only keys `datasets`' caches)."""
    digest = hashlib.sha256()
    for path in sorted(split_dir.glob("data-*.arrow")):
        digest.update(path.read_bytes())
    state_path = split_dir / "state.json"
    state = json.loads(state_path.read_text(encoding="utf-8"))
    state["_fingerprint"] = digest.hexdigest()[:16]
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")


def run(cfg: TasksConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    sp = spm.load(str(Path(inputs["tokenizer"]) / "tokenizer.model"))
    makers = {cfg.imdb_source: ("imdb", imdb_example, imdb_features()),
              cfg.conll_source: ("conll2003", conll_example, conll_features())}
    # Every other labelled source: a task dataset named after it, its label or tag names
    # found in its rows (they are known once all are read).
    generic = {source: task_type for source, task_type in cfg.task_sources.items()
               if source not in makers}
    for source, task_type in generic.items():
        makers[source] = (source, classification_example if task_type == "classification"
                          else ner_example, None)
    examples: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    counters = {"in": 0, "out": 0, "dropped:not_a_task_source": 0}
    # Only the task sources' files are read (ingest names its files after the source); the
    # other documents are counted from the files' footers.
    folder = str(inputs["ingest"])
    task_files = sorted({p for source in makers for p in source_files(folder, source)})
    total = num_rows(parquet_files(folder))
    task_rows = num_rows(task_files)
    counters["in"] += total - task_rows
    counters["dropped:not_a_task_source"] += total - task_rows
    rows = (row for path in task_files for table in iter_batches(path)
            for row in table.to_pylist())
    for row in rows:
        counters["in"] += 1
        if row["source"] not in makers:
            counters["dropped:not_a_task_source"] += 1
            continue
        task, make, _ = makers[row["source"]]
        try:
            example = make(row, json.loads(row["meta"]), sp, cfg.max_length)
        except UnknownTagError as exc:  # counted, named in the log, never silently lost
            counters["dropped:unknown_ner_tag"] = counters.get("dropped:unknown_ner_tag", 0) + 1
            logging.warning("tasks: %s", exc)
            continue
        examples[task][row["split"]].append(example)
        counters["out"] += 1
    for source, (task, _, features) in makers.items():
        if task not in examples:
            continue
        if features is None:  # a generic task: its names from all its splits
            task_type = generic[source]
            found = {x for rows in examples[task].values() for r in rows
                     for x in ([r["label"]] if task_type == "classification" else r["ner_tags"])}
            names = sorted(found) if task_type == "classification" else tag_order(found)
            for rows in examples[task].values():
                _names_to_ids(task_type, rows, names)
            features = (classification_features(names) if task_type == "classification"
                        else ner_features(names))
        splits = {split: datasets.Dataset.from_list(sorted(rows, key=lambda r: r["id"]),
                                                    features=features)
                  for split, rows in sorted(examples[task].items())}
        datasets.DatasetDict(splits).save_to_disk(str(Path(out) / task))
        for split, ds in splits.items():
            counters[f"{task}:{split}"] = len(ds)
            _stable_fingerprint(Path(out) / task / split)
    return counters
