"""Each source reader on the real samples in ../shared/corpora, with exact counts."""

import json
from collections import Counter
from pathlib import Path

import pytest

from pipelines.ingest import read_source_file
from pipelines.sources import commoncrawl, conll2003, imdb, wikipedia


@pytest.mark.parametrize(("name", "split", "docs", "sentences", "tokens"), [
    ("train.txt", "train", 946, 14041, 203621),
    ("valid.txt", "validation", 216, 3250, 51362),
    ("test.txt", "test", 231, 3453, 46435),
])
def test_conll2003_splits_have_the_official_counts(corpora, name, split, docs, sentences, tokens):
    records = list(conll2003.read(str(corpora / "conll2003" / name), "conll2003"))
    assert all(reason is None for _, reason in records)
    sents = [doc for doc, _ in records]
    assert {d.split for d in sents} == {split}
    assert len(sents) == sentences
    assert len({d.meta["doc_index"] for d in sents}) == docs
    assert sum(len(d.meta["tokens"]) for d in sents) == tokens
    first = sents[0] if split != "train" else sents[0]
    assert len(first.meta["tokens"]) == len(first.meta["ner_tags"]) == len(first.meta["pos_tags"])


def test_conll2003_first_train_sentence_is_exact(corpora):
    doc, _ = next(conll2003.read(str(corpora / "conll2003" / "train.txt"), "conll2003"))
    assert doc.id == "conll2003/train/000000"
    assert doc.text == "EU rejects German call to boycott British lamb ."
    assert doc.meta["ner_tags"] == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    assert doc.meta["doc_index"] == 0


def test_conll2003_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ\n", encoding="utf-8")
    with pytest.raises(conll2003.ConllFormatError, match=r"train\.txt:4: expected 4 columns"):
        list(conll2003.read(str(path), "conll2003"))


def test_imdb_reads_all_5000_reviews_with_labels_ratings_and_splits(corpora):
    files = imdb.list_files(str(corpora / "imdb_aclImdb" / "aclImdb"))
    docs = [doc for f in files for doc, reason in imdb.read(f, "imdb") if reason is None]
    assert len(docs) == 5000
    assert Counter((d.split, d.meta["label"]) for d in docs) == {
        ("train", "pos"): 1250, ("train", "neg"): 1250, ("test", "pos"): 1250,
        ("test", "neg"): 1250}
    for d in docs:
        assert (d.meta["rating"] >= 7) == (d.meta["label"] == "pos")
        assert "<br" not in d.text
    assert len({d.id for d in docs}) == 5000


def test_wikipedia_keeps_106_articles_counts_100_redirects_and_leaves_no_markup(corpora):
    dump = next((corpora / "wikipedia_xml").glob("*.bz2"))
    records = list(wikipedia.read(str(dump), "wikipedia"))
    assert Counter(reason for _, reason in records) == {None: 106, "redirect": 100}
    articles = [doc for doc, reason in records if reason is None]
    for doc in articles:
        for markup in ("{{", "[[", "'''", "<ref", "{|"):
            assert markup not in doc.text, (doc.meta["title"], markup)
    anarchism = next(d for d in articles if d.meta["title"] == "Anarchism")
    assert anarchism.text.startswith("Anarchism is a political philosophy that advocates")
    assert anarchism.meta["page_id"] == 12 and anarchism.meta["timestamp"].startswith("20")


def test_wikipedia_marks_disambiguation_pages(corpora):
    # Lists of the articles a title may mean (Wikipedia does not count them as articles),
    # by their templates: {{disambiguation}}, {{geodis}} in en, {{aimai}} in ja. A
    # {{要曖昧さ回避}} (needs disambiguation) tag on an ordinary article does not mark it.
    marked = {}
    for name in ("wikipedia_xml/*.bz2", "wikipedia_xml_ja/*.xz"):
        dump = next(corpora.glob(name))
        metas = [json.loads(row["meta"]) for row, reason in
                 read_source_file("wikipedia", "w", str(dump), {}) if reason is None]
        marked[name] = {m["title"] for m in metas if m.get("disambiguation")}
    assert marked["wikipedia_xml/*.bz2"] == {
        "Alien", "Austin (disambiguation)", "Ada", "Aberdeen (disambiguation)",
        "Argument (disambiguation)", "Animal (disambiguation)", "Asia Minor (disambiguation)",
        "Aa River"}
    assert marked["wikipedia_xml_ja/*.xz"] == {
        "EU (曖昧さ回避)", "地理", "タイ", "サンバ", "フォスター", "ゴスペル"}


def test_commoncrawl_reads_all_16_pages_of_the_warc_sample(corpora):
    records = list(commoncrawl.read(str(corpora / "commoncrawl_warc" / "warcfile.warc.gz"), "cc"))
    reasons = Counter(reason for _, reason in records)
    assert reasons == {None: 16, "warc_request": 17, "warc_metadata": 16, "warc_warcinfo": 1}
    pages = [doc for doc, reason in records if reason is None]
    assert all(doc.text and doc.meta["url"].startswith("http") for doc in pages)


def test_commoncrawl_takes_the_wet_conversion_record_as_it_is(corpora):
    records = list(commoncrawl.read(str(corpora / "commoncrawl_warc" / "whirlwind.warc.wet.gz"),
                                    "cc"))
    (doc,) = [doc for doc, reason in records if reason is None]
    assert doc.meta["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert doc.meta["crawl_language"] == "spa"
    assert doc.text.startswith("Escopete - Biquipedia, a enciclopedia libre")


def test_wikipedia_reader_does_not_expand_entities(tmp_path: Path):
    xml = (b'<?xml version="1.0"?>\n<!DOCTYPE mediawiki [<!ENTITY boom "BOOM">]>\n'
           b'<mediawiki><page><title>T</title><ns>0</ns><id>1</id><revision><id>2</id>'
           b'<timestamp>2020-01-01T00:00:00Z</timestamp><text>Hello &boom; world, a page.</text>'
           b'</revision></page></mediawiki>')
    path = tmp_path / "pages-articles.xml"
    path.write_bytes(xml)
    (doc, reason), = list(wikipedia.read(str(path), "wikipedia"))
    assert reason is None and "BOOM" not in doc.text
