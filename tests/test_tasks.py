"""Task datasets: IMDb and CoNLL-2003, published splits, ClassLabels, aligned model inputs."""

from pathlib import Path

import datasets
import pytest

from pipelines.tasks import IGNORE_INDEX, NER_TAGS, UnknownTagError, align_labels, conll_example
from tokenizer import spm

pytestmark = pytest.mark.slow


def test_word_alignment_labels_first_piece_and_masks_continuations():
    ids, labels, words = align_labels([[10, 11], [12], [13, 14, 15]], [3, 0, 5], max_length=64)
    assert ids == [spm.BOS_ID, 10, 11, 12, 13, 14, 15, spm.EOS_ID]
    assert labels == [IGNORE_INDEX, 3, IGNORE_INDEX, 0, 5, IGNORE_INDEX, IGNORE_INDEX,
                      IGNORE_INDEX]
    assert words == [-1, 0, 0, 1, 2, 2, 2, -1]


def test_word_alignment_truncates_and_keeps_eos():
    ids, labels, _ = align_labels([[10, 11], [12], [13, 14, 15]], [3, 0, 5], max_length=4)
    assert ids == [spm.BOS_ID, 10, 11, spm.EOS_ID]
    assert labels == [IGNORE_INDEX, 3, IGNORE_INDEX, IGNORE_INDEX]


def test_an_unknown_ner_tag_is_an_error_naming_the_document():
    row = {"id": "conll2003/train/000007"}
    meta = {"tokens": ["x"], "pos_tags": ["NN"], "chunk_tags": ["O"], "ner_tags": ["B-FOO"],
            "doc_index": 0}
    with pytest.raises(UnknownTagError, match=r"conll2003/train/000007: NER tags \['B-FOO'\]"):
        conll_example(row, meta, sp=None, max_length=16)


def test_task_datasets_keep_the_published_splits(demo_build):
    _, summary = demo_build
    folder = Path(summary["tasks"]["path"])
    imdb = datasets.load_from_disk(str(folder / "imdb"))
    assert {split: len(ds) for split, ds in imdb.items()} == {"train": 2500, "test": 2500}
    assert imdb["train"].features["label"].names == ["neg", "pos"]
    assert sum(imdb["test"]["label"]) == 1250
    first = imdb["train"][0]
    assert first["input_ids"][0] == spm.BOS_ID and first["input_ids"][-1] == spm.EOS_ID
    assert len(first["input_ids"]) <= 512

    conll = datasets.load_from_disk(str(folder / "conll2003"))
    assert {s: len(ds) for s, ds in conll.items()} == {"train": 14041, "validation": 3250,
                                                       "test": 3453}
    assert conll["train"].features["ner_tags"].feature.names == NER_TAGS
    sp = spm.load(str(Path(summary["tokenizer"]["path"]) / "tokenizer.model"))
    example = conll["train"][0]
    assert example["tokens"][:3] == ["EU", "rejects", "German"]
    assert [NER_TAGS[t] for t in example["ner_tags"]][:3] == ["B-ORG", "O", "B-MISC"]
    labelled = [(w, lab) for w, lab in zip(example["word_ids"], example["labels"], strict=True)
                if lab != IGNORE_INDEX]
    assert [w for w, _ in labelled] == list(range(len(example["tokens"])))
    assert [lab for _, lab in labelled] == example["ner_tags"]
    pieces = sp.encode(example["tokens"])
    assert example["input_ids"][1:-1] == [p for word in pieces for p in word]


def test_task_splits_load_with_load_dataset_arrow(demo_build):
    _, summary = demo_build
    files = sorted((Path(summary["tasks"]["path"]) / "conll2003" / "test").glob("*.arrow"))
    ds = datasets.load_dataset("arrow", data_files={"test": [str(f) for f in files]},
                               split="test", cache_dir=str(Path(summary["tasks"]["path"]).parent
                                                           / "hf-cache"))
    assert len(ds) == 3453
