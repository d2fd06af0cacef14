"""Reading WordNet through nltk's reader, and ranking its synonyms and vocabulary."""

from __future__ import annotations

import io
import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from core.util.names import display_name as clean_name, name_key as normalise_name
from core.synonyms.suggestion import Suggestion, dedupe_suggestions
from core.labels.wordnet_files import LEXNAMES_TEXT, WordNetLocation, WordNetUnavailable, find_wordnet


DEFAULT_MAX_VOCABULARY = 3000


@lru_cache(maxsize=1)
def _reader_class():
    """nltk's reader, taught to supply files a distribution leaves out.

    Built lazily so that importing this module does not import nltk (an optional
    dependency: only WordNet sources need it).
    """
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class SemscaleWordNetReader(WordNetCorpusReader):
        def __init__(self, root, missing: tuple[str, ...] = ()):
            self._semscale_missing = tuple(missing)
            super().__init__(root, None)

        def open(self, file):  # noqa: A003 - nltk's name
            if file in self._semscale_missing:
                return io.StringIO(LEXNAMES_TEXT if file == "lexnames" else "")
            return super().open(file)

        def lemma_count(self, lemma):
            if "cntlist.rev" in self._semscale_missing:
                return 0
            return super().lemma_count(lemma)

        def map_wn(self, version="wordnet"):
            # Only the multilingual (OMW) functions need a mapping to nltk's own WordNet,
            # and building it would look the database up in nltk's data folders.
            return None

    return SemscaleWordNetReader


def _authorise_for_nltk(root: str) -> None:
    """nltk >= 3.9 only opens files under its data folders; add this database's root."""
    import nltk.data

    if not any(str(getattr(p, "path", p)) == root for p in nltk.data.path):
        nltk.data.path.append(root)


@lru_cache(maxsize=8)
def _open_location(loc: WordNetLocation):
    try:
        import nltk.data  # noqa: F401
    except ImportError:
        raise WordNetUnavailable("reading WordNet needs the nltk package: pip install nltk", field="wordnet") from None
    from nltk.corpus.reader.wordnet import WordNetError

    cls = _reader_class()
    _authorise_for_nltk(loc.root)
    if loc.entry is not None:
        from nltk.data import ZipFilePathPointer

        root: Any = ZipFilePathPointer(loc.root, loc.entry)
    else:
        root = loc.root
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multilingual functions are not available"
            reader = cls(root, loc.missing)
    except (WordNetError, OSError, ValueError, AssertionError, IndexError, StopIteration, PermissionError) as e:
        raise WordNetUnavailable(f"cannot read this WordNet database ({type(e).__name__}: {e})", file=loc.root,
                         field="wordnet") from None
    reader.semscale_location = loc
    return reader


def open_wordnet(location: Union[WordNetLocation, str, Path, None] = None):
    """An nltk ``WordNetCorpusReader`` for a located (or to-be-located) database.

    Readers are cached per location: loading WordNet's index takes a few seconds.
    """
    loc = location if isinstance(location, WordNetLocation) else find_wordnet(location)
    reader = _open_location(loc)
    _authorise_for_nltk(loc.root)  # again: nltk reads lazily and its data path may have changed since
    return reader


_WNID = re.compile(r"^n(\d{8})$")
_SYNSET_NAME = re.compile(r"^\S+\.[nvasr]\.\d{2}$")


def wordnet_form(name: str) -> str:
    """WordNet's spelling of a (possibly multi-word) name: 'great white shark' -> 'great_white_shark'."""
    return "_".join(clean_name(name).split())


def _closure_keys(ss, depth: int = 8) -> set[str]:
    """Normalised lemma names of a synset's hypernyms (and instance hypernyms), transitively."""
    keys: set[str] = set()
    frontier, seen = [ss], set()
    for _ in range(depth):
        nxt = []
        for s in frontier:
            for h in s.hypernyms() + s.instance_hypernyms():
                if h not in seen:
                    seen.add(h)
                    nxt.append(h)
                    keys.update(normalise_name(clean_name(n)) for n in h.lemma_names())
        frontier = nxt
    return keys


def _matches_qualifier(ss, qualifier: str) -> bool:
    """Does a sense fit a qualifier such as 'bird' in 'crane bird' or 'kite (bird of prey)'?"""
    q = normalise_name(qualifier)
    if not q:
        return False
    keys = _closure_keys(ss) | {normalise_name(clean_name(n)) for n in ss.lemma_names()}
    return q in keys or q.split()[-1] in keys


def _plain_synsets(reader, name: str, pos: Optional[str]) -> list:
    form = wordnet_form(name)
    variants = (form, form.replace("-", "_"), form.replace("_", "-"), form.replace("-", ""))
    for variant in dict.fromkeys(variants):
        found = reader.synsets(variant, pos=pos)
        if found:
            return list(found)
    return []


def lookup_synsets(reader, name: str, pos: Optional[str] = "n") -> list:
    """Synsets of a name, most likely intended sense first.

    Besides plain names (morphology handled by WordNet, so 'dogs' finds dog), accepts an
    ImageNet wnid (``n02085620``) or a synset name (``crane.n.04``) to pin one sense, and
    qualified names as dataset class lists write them ('kite (bird of prey)', 'crane
    bird'): the senses whose hypernyms match the qualifier. Senses that are named
    individuals (instances: the city of Chihuahua) go after general ones (the dog),
    since an image class is almost always a kind of thing.
    """
    from nltk.corpus.reader.wordnet import WordNetError

    name = clean_name(name)
    if not name:
        return []
    m = _WNID.match(name)
    if m:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ss = reader.synset_from_pos_and_offset("n", int(m.group(1)))
        return [ss] if ss is not None else []
    if _SYNSET_NAME.match(name):
        try:
            return [reader.synset(name)]
        except (WordNetError, ValueError):
            pass
    found = _plain_synsets(reader, name, pos)
    m = re.match(r"^(.+?)\s*\(([^()]*)\)$", name)
    if not found and m:
        # 'kite (bird of prey)': the senses of 'kite' that fit the qualifier, else all of them
        base = lookup_synsets(reader, m.group(1), pos)
        found = [ss for ss in base if _matches_qualifier(ss, m.group(2))] or base
    elif not found and len(name.split()) > 1:
        # 'crane bird': only senses of 'crane' that are birds ('American bullfrog' finds nothing)
        base_name, qualifier = name.rsplit(" ", 1)
        found = [ss for ss in _plain_synsets(reader, base_name, pos) if _matches_qualifier(ss, qualifier)]
    return sorted(found, key=lambda ss: bool(ss.instance_hypernyms()))  # stable


def _lemma_suggestions(synsets, source: str, score: float) -> list[Suggestion]:
    """Lemmas of synsets, each synset's lemmas ordered by tagged frequency (cntlist)."""
    out = []
    for ss in synsets:
        lemmas = list(ss.lemmas())
        counts = [lm.count() for lm in lemmas]
        order = sorted(range(len(lemmas)), key=lambda i: (-counts[i], i))
        for i in order:
            out.append(Suggestion(clean_name(lemmas[i].name()), source, score, f"{ss.name()} count {counts[i]}"))
    return out


def wordnet_suggestions(reader, class_name: str, include_related: bool = False, *, max_senses: Optional[int] = 1,
                        pos: Optional[str] = "n") -> list[Suggestion]:
    """Ranked WordNet names for a class.

    Synonyms come first: the lemmas of the name's first ``max_senses`` senses (None =
    all) in sense order, each sense's lemmas by frequency count. With
    ``include_related``, lemmas of the hypernyms (``wordnet-hypernym``) and hyponyms
    (``wordnet-hyponym``, most frequent first) one step away follow. Only the first
    sense is used by default because later senses of a common word are usually other
    things ('dog' the frump, the andiron, the hot dog).
    """
    synsets = lookup_synsets(reader, class_name, pos)
    if max_senses is not None:
        synsets = synsets[: max(0, max_senses)]
    out: list[Suggestion] = []
    for i, ss in enumerate(synsets):
        out += _lemma_suggestions([ss], "wordnet", 1.0 / (i + 1))
    if include_related:
        # nltk keeps pointers in a set (order varies between processes): sort them, so
        # the same database always gives the same labels file
        for i, ss in enumerate(synsets):
            hypers = sorted(ss.hypernyms(), key=lambda h: h.offset())
            out += _lemma_suggestions(hypers, "wordnet-hypernym", 0.5 / (i + 1))
        for i, ss in enumerate(synsets):
            hypos = list(ss.hyponyms())
            weight = {h: sum(lm.count() for lm in h.lemmas()) for h in hypos}
            hypos.sort(key=lambda h: (-weight[h], h.offset()))  # most frequent first
            out += _lemma_suggestions(hypos, "wordnet-hyponym", 0.5 / (i + 1))
    return dedupe_suggestions(out)


def _noun_lemma_frequencies(reader) -> dict[str, int]:
    """Tagged-corpus frequency of every noun lemma (summed over senses) from cntlist.rev."""
    if "cntlist.rev" in getattr(reader, "_semscale_missing", ()):
        return {}
    freq: dict[str, int] = {}
    try:
        fp = reader.open("cntlist.rev")
    except OSError:
        return {}
    with fp:
        for line in fp:
            parts = line.split()
            if len(parts) < 3 or "%" not in parts[0]:
                continue
            lemma, _, rest = parts[0].partition("%")
            if not rest.startswith("1"):  # 1 = noun
                continue
            try:
                freq[lemma] = freq.get(lemma, 0) + int(parts[-1])
            except ValueError:
                continue
    return freq


def wordnet_vocabulary(reader, class_names: Sequence[str] = (), max_size: int = DEFAULT_MAX_VOCABULARY) -> list[str]:
    """Noun lemmas for neighbour ranking, the most relevant first.

    First the WordNet neighbourhood of each class (synonyms of its first senses,
    hypernyms, hyponyms), interleaved across classes so a size limit is fair to all of
    them; then the most frequent nouns (by cntlist), then the rest alphabetically.
    """
    per_class = [[s.name for s in wordnet_suggestions(reader, c, True, max_senses=3)] for c in class_names]
    seen: set[str] = set()
    out: list[str] = []

    def add(name: str) -> bool:
        name = clean_name(name)
        k = normalise_name(name)
        if k and k not in seen and any(ch.isalpha() for ch in name):
            seen.add(k)
            out.append(name)
        return len(out) >= max_size

    depth = max((len(x) for x in per_class), default=0)
    for j in range(depth):
        for names in per_class:
            if j < len(names) and add(names[j]):
                return out
    freq = _noun_lemma_frequencies(reader)
    for lemma in sorted(freq, key=lambda k: (-freq[k], k)):
        if add(lemma):
            return out
    for lemma in sorted(reader.all_lemma_names(pos="n")):
        if add(lemma):
            return out
    return out
