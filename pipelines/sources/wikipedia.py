"""Wikipedia pages-articles XML dumps (.xml, .xml.bz2, .xml.gz or .xml.xz) -> one Document per
article, in any language: the dump's language (`<mediawiki xml:lang>`) goes into
`meta.wiki_language`, and Chinese variant markup (`-{zh-tw:資訊;zh-cn:信息;}-`) is resolved to one
variant (`VARIANT`, zh-cn, with MediaWiki's fallbacks) before the wikitext is parsed.

Multistream dumps (`*-multistream.xml.bz2` with `*-multistream-index.txt.bz2` beside them, as
Wikimedia publishes them) are read by byte ranges of whole bz2 streams (`list_files`), one input per
group of streams, so that several workers share one dump.
Contract: `read(path, source) -> Iterator[(Document, reason | None)]`, streaming the dump with
lxml's iterparse (entities not resolved, no DTD, no network) and clearing each page after use, so
memory stays flat whatever the dump size. Namespace-0, non-redirect, non-empty pages are kept;
redirects, other namespaces and empty pages come back with their reason; disambiguation pages are
kept with `meta.disambiguation` set (they are lists of links, not articles). Wikitext becomes plain
text by walking mwparserfromhell's tree (templates, references, tables, files, categories and
interwiki links removed; headings, paragraphs and list items kept, headings of sections left
empty dropped).
Reference: https://www.mediawiki.org/wiki/Help:Export (schema 0.10).
"""

from __future__ import annotations

import bz2
import codecs
import functools
import gzip
import io
import lzma
import os
import re
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

import mwparserfromhell
from lxml import etree
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

from pipelines.schema import Document

# Tags whose content is not article prose.
_DROP_TAGS = {
    "ref", "references", "table", "gallery", "math", "chem", "timeline", "imagemap", "score",
    "syntaxhighlight", "source", "templatedata", "graph", "mapframe", "maplink", "noinclude",
    "includeonly", "onlyinclude", "nowiki", "pre", "hiero", "inputbox", "categorytree",
}
# Links to the File (6), Media (-2) and Category (14) namespaces, and to Wiktionary, are not
# prose. Each wiki names these namespaces in its own language, with aliases: the English
# canonical names and aliases, and ja's and zh's, are built in; a dump's <siteinfo> adds its own
# (`namespace_names`), so [[ファイル:...|thumb|...]] on jawiki or [[Plik:...]] on plwiki go too.
NON_ARTICLE_NAMESPACES = frozenset({
    "file", "image", "media", "category", "wikt", "wiktionary",
    "ファイル", "画像", "メディア", "カテゴリ",
    "文件", "檔案", "档案", "图像", "圖像", "媒体", "媒體", "分类", "分類",
})
_NON_ARTICLE_KEYS = frozenset({"-2", "6", "14"})
# HTML comments go first, as MediaWiki's preprocessor removes them before anything else: an
# unclosed one runs to the end of the page, and `<!--{|class=...` must not read as `-{`.
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_INTERWIKI = re.compile(r"^\s*:?\s*[a-z]{2,3}(-[a-z]+)*\s*:", re.I)
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
# Disambiguation pages are not articles (Wikipedia:Disambiguation): lists of the articles a
# title may mean, marked by these templates (the __DISAMBIG__ they carry is a page property
# that dumps do not show). en, ja, zh; "要曖昧さ回避" (needs disambiguation) and hatnotes such as
# "dablink" sit on ordinary articles and are not among them.
_DISAMBIGUATION = re.compile(
    r"\{\{\s*(?:disambiguation|disambig|disamb|dab|hndis|geodis|numberdis|aimai|曖昧さ回避|"
    r"人名の曖昧さ回避|地名の曖昧さ回避|消歧义|消歧義)\s*(?:\||\}\})", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"\n{3,}")
# Fallbacks for markup that mwparserfromhell leaves as text because it is unbalanced in the source
# (an unclosed <ref>, a table missing its `|}`): real dumps have plenty of both.
_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?(</ref>|$)", re.I | re.S | re.M)
_TABLE_LINES = re.compile(r"^\s*\{\|.*?(^\s*\|\}.*?$|\Z)", re.S | re.M)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")


@functools.lru_cache(maxsize=16)
def _file_link(names: frozenset[str]) -> re.Pattern:
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.compile(rf"\[\[\s*:?\s*(?:{alternatives})\s*:[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*"
                      r"(\]\]|$)", re.I | re.M)


_LINK = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")
_LEFTOVER = re.compile(r"\{\{|\}\}|\[\[|\]\]|'{2,}|</?[a-z]+[^>]*>", re.I)
_NESTED_ITEM = re.compile(r"^((?:- )+)")  # "- - item" (a `**` list) -> indented "- item"
_SPACE_RUNS = re.compile(r"[ \t]{2,}")
# A heading leaves `_plain` as its own line, "\ue000<level>\ue000<title>", so that the headings
# of sections left empty (references, tables and templates removed) can be dropped.
_HEADING = "\ue000"
_HEADING_LINE = re.compile(f"{_HEADING}(\\d){_HEADING}(.*)")


def open_dump(path: str) -> IO[bytes]:
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".xz"):
        return lzma.open(path, "rb")
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


# ---- Chinese variant markup (https://www.mediawiki.org/wiki/Writing_systems/Syntax) -----------
VARIANT = "zh-cn"
# MediaWiki's fallback order per variant (LanguageConverter's zh fallbacks).
_FALLBACKS = {
    "zh-cn": ("zh-cn", "zh-hans", "zh-sg", "zh-my", "zh"),
    "zh-sg": ("zh-sg", "zh-hans", "zh-cn", "zh-my", "zh"),
    "zh-my": ("zh-my", "zh-hans", "zh-sg", "zh-cn", "zh"),
    "zh-hans": ("zh-hans", "zh-cn", "zh-sg", "zh-my", "zh"),
    "zh-tw": ("zh-tw", "zh-hant", "zh-hk", "zh-mo", "zh"),
    "zh-hk": ("zh-hk", "zh-hant", "zh-mo", "zh-tw", "zh"),
    "zh-mo": ("zh-mo", "zh-hant", "zh-hk", "zh-tw", "zh"),
    "zh-hant": ("zh-hant", "zh-tw", "zh-hk", "zh-mo", "zh"),
}
_VARIANT_SPAN = re.compile(r"-\{((?:(?!-\{|\}-).)*)\}-", re.S)  # innermost first
_VARIANT_RULE = re.compile(r"^\s*(zh(?:-[a-z]+)?)\s*:(.*)$", re.S)


class TextOptions(NamedTuple):
    """How article text is made: the Chinese variant, an OpenCC converter (or None), and the
    namespace names whose links are not prose (lower-cased)."""

    variant: str = VARIANT
    convert: Any = None
    skip_namespaces: frozenset[str] = NON_ARTICLE_NAMESPACES


def namespace_names(siteinfo: etree._Element) -> frozenset[str]:
    """The File, Media and Category namespace names a dump's <siteinfo> declares."""
    return frozenset(
        (node.text or "").strip().lower() for node in siteinfo.iter("{*}namespace")
        if node.get("key") in _NON_ARTICLE_KEYS and (node.text or "").strip())


@functools.cache
def _converter(config: str | None) -> Any:
    if config is None:
        return None
    import opencc

    try:
        return opencc.OpenCC(config)
    except Exception as exc:  # opencc raises its own error types for an unknown config
        raise ValueError(f"OpenCC conversion {config!r}: {exc} (known: t2s, s2t, tw2s, s2tw, "
                         "hk2s, s2hk, t2tw, ...)") from None


def resolve_variants(wikitext: str, variant: str = VARIANT) -> str:
    """Every `-{...}-` span replaced by what a reader of `variant` sees: the text for that
    variant (or its fallbacks, else the first given) of `-{zh-tw:X;zh-cn:Y;}-`; the text itself
    of `-{X}-` and `-{R|X}-`; nothing for rules that only change conversion elsewhere
    (`-{H|...}-`, `-{T|...}-`, `-{-|...}-`, `-{D|...}-`)."""
    order = _FALLBACKS.get(variant, (variant, "zh"))

    def one(m: re.Match) -> str:
        body = m.group(1)
        flags, bar, rest = body.partition("|")
        if bar and re.fullmatch(r"[A-Za-z\-;\s]{1,6}", flags):
            letters = set(flags.replace(";", "").replace(" ", ""))
            if letters & {"H", "T", "-", "D"}:
                return ""
            if "R" in letters:
                return rest
            body = rest
        rules: dict[str, str] = {}
        for part in body.split(";"):
            if not part.strip() and rules:
                continue
            rule = _VARIANT_RULE.match(part)
            if rule is None:
                if rules:  # a ';' inside a variant's text
                    last = next(reversed(rules))
                    rules[last] += ";" + part
                    continue
                return body  # no variant rules: the text, protected from conversion
            rules[rule.group(1)] = rule.group(2)
        if not rules:
            return body
        for name in order:
            if name in rules:
                return rules[name].strip()
        return next(iter(rules.values())).strip()

    previous = None
    while previous != wikitext and "-{" in wikitext:
        previous, wikitext = wikitext, _VARIANT_SPAN.sub(one, wikitext)
    return wikitext


def index_of(path: str) -> str | None:
    """The multistream index Wikimedia publishes beside a multistream dump, if it is there."""
    if "multistream" not in os.path.basename(path) or "-index" in os.path.basename(path):
        return None
    candidate = re.sub(r"\.xml\.bz2$", "", path) + "-index.txt.bz2"
    return candidate if os.path.exists(candidate) else None


def stream_ranges(path: str, max_bytes: int = 64 * 2**20) -> list[tuple[int, int]]:
    """Byte ranges of whole bz2 streams (from the index), grouped up to `max_bytes` each."""
    index = index_of(path)
    if index is None:
        raise ValueError(f"{path}: no multistream index beside it")
    offsets = set()
    with bz2.open(index, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            offset, _, rest = line.partition(":")
            if not offset.isdigit() or ":" not in rest:
                raise ValueError(f"{index}:{line_no}: expected offset:page_id:title")
            offsets.add(int(offset))
    size = os.path.getsize(path)
    bounds = sorted(offsets) + [size]
    ranges, start = [], bounds[0]
    for end in bounds[1:]:
        if end - start >= max_bytes:
            ranges.append((start, end))
            start = end
    if start < size:
        ranges.append((start, size))
    return ranges


def list_files(path: str) -> list[str]:
    """Dump files under a path; a multistream dump with its index becomes one input per group of
    streams (`<path>#<start>-<end>`), so several workers share one dump."""
    import glob as globmod

    matches = sorted(globmod.glob(path))
    files = []
    for match in matches:
        if os.path.isdir(match):
            files += [os.path.join(d, f) for d, _, names in sorted(os.walk(match))
                      for f in sorted(names)]
        else:
            files.append(match)
    inputs = []
    for f in files:
        if "-index" in os.path.basename(f) and "multistream" in os.path.basename(f):
            continue  # read through its dump
        if index_of(f):
            inputs += [f"{f}#{start}-{end}" for start, end in stream_ranges(f)]
        else:
            inputs.append(f)
    return inputs


def read(path: str, source: str, variant: str = VARIANT, convert: str | None = None
         ) -> Iterator[tuple[Document, str | None]]:
    """`variant`: the Chinese variant `-{...}-` markup resolves to; `convert`: an OpenCC
    conversion applied to every article's text ("t2s", "s2t", "tw2s", ...; None: none)."""
    text = TextOptions(variant, _converter(convert))
    if "#" in path:
        dump, _, span = path.rpartition("#")
        start, end = (int(x) for x in span.split("-"))
        yield from read_streams(dump, start, end, source, text)
        return
    with open_dump(path) as fh:
        stream = _Utf8Repair(fh)
        try:
            yield from read_pages(stream, source, text)
        except etree.XMLSyntaxError:
            if stream.error is not None:  # a truncated file: the pages before the cut were kept
                raise stream.error from None
            raise


class _Utf8Repair(io.RawIOBase):
    """Bytes in, valid UTF-8 out: invalid sequences become U+FFFD instead of stopping the XML
    parser; a read error (a truncated .bz2) ends the stream and is kept in `error`."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.raw, self.error, self.pending = raw, None, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self.pending and self.error is None:
            try:
                chunk = self.raw.read(1 << 16)
            except (EOFError, OSError) as exc:
                self.error = exc
                break
            self.pending = self.text.decode(chunk, final=not chunk).encode("utf-8")
            if not chunk:
                break
        size = len(self.pending) if size is None or size < 0 else size
        out, self.pending = self.pending[:size], self.pending[size:]
        return out


def read_streams(path: str, start: int, end: int, source: str,
                 text: TextOptions | None = None) -> Iterator[tuple[Document, str | None]]:
    """The pages in bytes [start, end) of a multistream dump: whole bz2 streams of <page>s."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = bz2.decompress(fh.read(end - start))
    body = data.replace(b"</mediawiki>", b"")
    first = body.find(b"<page>")
    if first < 0:
        return  # the header or footer stream: no pages
    yield from read_pages(io.BytesIO(b"<pages>" + body[first:] + b"</pages>"), source, text)


_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def read_pages(fh: IO[bytes], source: str, text: TextOptions | None = None
               ) -> Iterator[tuple[Document, str | None]]:
    parser = etree.iterparse(
        fh, events=("start", "end"), tag=("{*}mediawiki", "{*}siteinfo", "{*}page"),
        resolve_entities=False,
        no_network=True, load_dtd=False, huge_tree=True,
    )
    language = None
    text = text or TextOptions()
    for event, page in parser:
        name = etree.QName(page).localname
        if name == "mediawiki":
            if event == "start":
                language = page.get(_XML_LANG)
            continue
        if name == "siteinfo":
            if event == "end":
                text = text._replace(skip_namespaces=text.skip_namespaces | namespace_names(page))
            continue
        if event == "start":
            continue
        doc, reason = page_to_document(page, source, text)
        if language:
            doc.meta["wiki_language"] = language
        yield doc, reason
        page.clear()
        while page.getprevious() is not None:  # drop the references lxml keeps to earlier pages
            del page.getparent()[0]


def _child_text(elem: etree._Element, name: str) -> str:
    for child in elem:
        if etree.QName(child).localname == name:
            # Entity references stay unresolved (no bombs, no external fetches): an entity is a
            # child node, of which only the text after it (its tail) is kept.
            return (child.text or "") + "".join(node.tail or "" for node in child)
    return ""


def _child(elem: etree._Element, name: str) -> etree._Element | None:
    for child in elem:
        if etree.QName(child).localname == name:
            return child
    return None


def page_to_document(page: etree._Element, source: str, text: TextOptions | None = None
                     ) -> tuple[Document, str | None]:
    title = _child_text(page, "title")
    page_id = _child_text(page, "id")
    ns = _child_text(page, "ns").strip() or "0"
    revision = _child(page, "revision")
    rev_id = _child_text(revision, "id") if revision is not None else ""
    timestamp = _child_text(revision, "timestamp") if revision is not None else ""
    wikitext = _child_text(revision, "text") if revision is not None else ""
    meta = {"title": title, "page_id": int(page_id) if page_id.isdigit() else page_id,
            "revision_id": int(rev_id) if rev_id.isdigit() else rev_id,
            "timestamp": timestamp, "namespace": int(ns) if ns.lstrip("-").isdigit() else ns}
    doc = Document(id=f"{source}/{page_id}", source=source, split="train", text="", meta=meta)
    if _child(page, "redirect") is not None or wikitext.lstrip()[:9].upper() == "#REDIRECT":
        doc.text = wikitext
        return doc, "redirect"
    if ns != "0":
        return doc, "not_article_namespace"
    if _DISAMBIGUATION.search(wikitext):
        meta["disambiguation"] = True
    options = text or TextOptions()
    doc.text = wikitext_to_text(wikitext, options.variant, options.skip_namespaces)
    if options.convert is not None:
        doc.text = options.convert.convert(doc.text)
    if not doc.text:
        return doc, "empty_page"
    return doc, None


def wikitext_to_text(wikitext: str, variant: str = VARIANT,
                     skip_namespaces: frozenset[str] = NON_ARTICLE_NAMESPACES) -> str:
    wikitext = _COMMENT.sub("", wikitext)
    if "-{" in wikitext:
        wikitext = resolve_variants(wikitext, variant)
    text = _plain(mwparserfromhell.parse(wikitext), skip_namespaces)
    text = _MAGIC_WORD.sub("", _residual_markup(text, skip_namespaces))
    lines = [_SPACE_RUNS.sub(" ", line).strip() for line in text.split("\n")]
    lines = [_NESTED_ITEM.sub(lambda m: "  " * (len(m.group(1)) // 2 - 1) + "- ", line)
             for line in lines if line not in ("-", "*", "#", ":", ";")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(_drop_empty_sections(lines))).strip()


def _drop_empty_sections(lines: list[str]) -> list[str]:
    """The lines with each heading kept only where text follows it before the next heading of
    its level or above, as WikiExtractor does: a "References" or "脚注" section is empty once
    its <references/> is removed, and a section of one table once the table is. Subheadings
    with text under them keep their parents."""
    out: list[str] = []
    pending: list[tuple[int, str]] = []  # headings with no text under them yet, outermost first
    for line in lines:
        heading = _HEADING_LINE.match(line)
        if heading is not None:
            level = int(heading.group(1))
            while pending and pending[-1][0] >= level:
                pending.pop()  # a section that ended empty
            pending.append((level, heading.group(2).strip()))
        elif line:
            out += [part for _, title in pending if title for part in ("", title, "")]
            pending = []
            out.append(line)
        else:
            out.append(line)
    return out


def _residual_markup(text: str, skip_namespaces: frozenset[str]) -> str:
    text = _REF.sub("", text)
    text = _TABLE_LINES.sub("", text)
    previous = None
    while previous != text:  # innermost templates first
        previous, text = text, _TEMPLATE.sub("", text)
    text = _file_link(skip_namespaces - {"wikt", "wiktionary"}).sub("", text)
    text = _LINK.sub(r"\1", text)
    return _LEFTOVER.sub("", text)


def _namespace(title: str) -> str:
    """The lower-cased namespace part of a link target ("" if none): `:Category:X` too."""
    head, colon, _ = title.strip().lstrip(":").partition(":")
    return head.strip().lower() if colon else ""


def _plain(code: Wikicode, skip: frozenset[str]) -> str:
    out: list[str] = []
    for node in code.nodes:
        if isinstance(node, Text):
            out.append(str(node.value))
        elif isinstance(node, (Template, Comment, Argument)):
            continue
        elif isinstance(node, Wikilink):
            title = str(node.title)
            if _namespace(title) in skip or _INTERWIKI.match(title):
                continue
            out.append(_plain(node.text if node.text is not None else node.title, skip))
        elif isinstance(node, ExternalLink):
            out.append(_plain(node.title, skip) if node.title is not None else "")
        elif isinstance(node, Heading):
            out.append(f"\n{_HEADING}{min(node.level, 9)}{_HEADING}"
                       + _plain(node.title, skip).strip() + "\n")
        elif isinstance(node, HTMLEntity):
            out.append(node.normalize())
        elif isinstance(node, Tag):
            out.append(_tag_text(node, skip))
        else:  # anything mwparserfromhell adds later: keep its visible text
            out.append(str(node.__strip__(normalize=True, collapse=True) or ""))
    return "".join(out)


def _tag_text(node: Tag, skip: frozenset[str]) -> str:
    tag = str(node.tag).strip().lower()
    if tag in _DROP_TAGS:
        return ""
    if tag in ("li", "dt", "dd"):  # list markup (`*`, `#`, `;`, `:`): the item text follows
        return "- " if tag == "li" else ""
    if tag == "br":
        return "\n"
    if tag == "hr":
        return "\n"
    return _plain(node.contents, skip) if node.contents is not None else ""
