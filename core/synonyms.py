"""Where the extra category names come from: WordNet, embedding neighbours, known class lists.

A semantic-scaling experiment needs 8 or 16 ranked names per class, and nobody wants
to type them. This module turns a bare class list into a ranked labels file:

* :func:`wordnet_suggestions` reads synonyms (and, on request, hypernyms/hyponyms one
  step away) from a local WordNet database through nltk's ``WordNetCorpusReader``.
  Nothing is ever downloaded: :func:`find_wordnet` looks in the places a database can
  already be (an explicit path, ``$SEMSCALE_WORDNET``, nltk data folders, the Debian
  ``wordnet-base`` files) and otherwise uses the WordNet 3.0 noun lexicon bundled in
  ``resources/`` (:mod:`core.lexicon`), which gives the same suggestions.
* :func:`neighbour_suggestions` ranks a vocabulary by cosine similarity to the class's
  canonical name under the selected backbone's own text encoder (same templates, same
  embedding cache as a sweep), so the suggestions are "near" in the model's own sense.
* :func:`load_class_list` reads class names from a preset (``imagenet``, ``cifar10``,
  ``cifar100``), a text/CSV/JSON file or a dataset folder.
* :func:`merge_suggestions` applies the hygiene rules (dedupe, cross-class collisions,
  user names first) and records every name's source in the labels file.

Everything here is free of Qt and of hidden I/O (the GUI's synonym editor calls it from
a worker thread); only :func:`find_wordnet` / :func:`open_wordnet` and the loaders read
files, and nothing writes any.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import InputError
from .events import CancelToken, EventCallback, Log, ignore_events
from .labels import LabelSet, labels_from_classes
from .names import display_name as clean_name, name_key as normalise_name  # noqa: F401  (re-exported)
from .tables import parse_user_json, read_user_text

SUGGESTION_SOURCES = ("wordnet", "neighbours")
CLASS_LIST_PRESETS = ("imagenet", "cifar10", "cifar100")
WORDNET_ENV = "SEMSCALE_WORDNET"
BUNDLED = "bundled"  # --wordnet bundled / $SEMSCALE_WORDNET=bundled: the lexicon in resources/
DEFAULT_MAX_VOCABULARY = 3000

# Where operating-system packages put the WordNet 3.x database files.
SYSTEM_WORDNET_DIRS: tuple[str, ...] = (
    "/usr/share/wordnet",  # Debian / Ubuntu: apt-get install wordnet-base
    "/usr/local/share/wordnet",
    "/usr/share/WordNet-3.0/dict",
    "/usr/local/WordNet-3.0/dict",
    "/opt/homebrew/share/wordnet",
    "/usr/local/opt/wordnet/dict",
)

# Every file nltk's WordNetCorpusReader may open. Only data.noun and index.noun are
# required; the others are supplied (empty, or the fixed lexnames list) when missing.
WORDNET_FILES: tuple[str, ...] = (
    "cntlist.rev", "lexnames", "index.sense",
    "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
WORDNET_REQUIRED = ("data.noun", "index.noun")

# The lexicographer files of WordNet 3.0/3.1 (``lexnames``; Debian does not ship it).
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_LEX_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
LEXNAMES_TEXT = "".join(f"{i:02d}\t{n}\t{_LEX_CATEGORY[n.split('.')[0]]}\n" for i, n in enumerate(_LEXNAMES))

NO_WORDNET_HELP = (
    "no WordNet database found (looked at --wordnet, ${env}, nltk data folders, {system} and the lexicon "
    "bundled with semscale, which is missing: reinstall semscale to get it back); "
    "install one with 'apt-get install wordnet-base' (Debian/Ubuntu), or run "
    "'python -m nltk.downloader wordnet' on a machine with network and copy the nltk_data folder here, "
    "or point --wordnet DIR (or ${env}) at a folder holding data.noun and index.noun"
)


# ---------------------------------------------------------------- names


@dataclass(frozen=True)
class Suggestion:
    """One candidate name for a class.

    ``source`` is what the labels file records in its ``source`` column (``wordnet``,
    ``wordnet-hypernym``, ``wordnet-hyponym``, ``neighbours:0.83``); ``score`` ranks
    candidates of one source (cosine similarity for neighbours; for WordNet 1/sense rank,
    halved for related synsets); ``note`` says where exactly it came from (synset, count).
    """

    name: str
    source: str
    score: float = 1.0
    note: str = ""


def dedupe_suggestions(items: Iterable[Suggestion]) -> list[Suggestion]:
    """Keep the first of each group of suggestions whose names normalise alike."""
    seen: set[str] = set()
    out = []
    for s in items:
        k = normalise_name(s.name)
        if k and k not in seen:
            seen.add(k)
            out.append(s)
    return out


# ---------------------------------------------------------------- WordNet: finding it


@dataclass(frozen=True)
class WordNetLocation:
    """A WordNet database that was found, and how.

    ``root`` is a folder, or a ``wordnet.zip`` with ``entry`` the folder inside it.
    ``missing`` lists optional files the folder lacks (Debian ships no ``lexnames`` or
    ``index.sense``); the reader supplies them, so nothing is written next to the data.
    """

    root: str
    kind: str  # argument | env | wnsearchdir | nltk | system | bundled
    entry: Optional[str] = None
    missing: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"{self.root}/{self.entry}" if self.entry else self.root
        extra = f" (supplied: {', '.join(self.missing)})" if self.missing else ""
        return f"WordNet at {where} [{self.kind}]{extra}"


def _zip_entry(path: Path) -> Optional[tuple[str, tuple[str, ...]]]:
    """(folder inside the zip holding data.noun, missing optional files) or None."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return None
    for n in sorted(names):
        if n.endswith("data.noun") and (n == "data.noun" or n.endswith("/data.noun")):
            entry = n[: -len("data.noun")]
            if entry + "index.noun" in names:
                return entry, tuple(f for f in WORDNET_FILES if entry + f not in names)
    return None


def _as_location(path: Path, kind: str) -> Optional[WordNetLocation]:
    """A WordNet location if ``path`` holds one (folder, WordNet's dict/, nltk data, zip)."""
    path = path.expanduser()
    if path.is_file() and path.suffix.lower() == ".zip":
        found = _zip_entry(path)
        if found:
            return WordNetLocation(str(path.resolve()), kind, found[0], found[1])
        return None
    if not path.is_dir():
        return None
    for folder in (path, path / "dict", path / "corpora" / "wordnet", path / "wordnet"):
        if all((folder / f).is_file() for f in WORDNET_REQUIRED):
            missing = tuple(f for f in WORDNET_FILES if not (folder / f).is_file())
            return WordNetLocation(str(folder.resolve()), kind, None, missing)
    for z in (path / "corpora" / "wordnet.zip", path / "wordnet.zip"):
        if z.is_file():
            loc = _as_location(z, kind)
            if loc:
                return loc
    return None


def bundled_wordnet() -> WordNetLocation:
    """The WordNet 3.0 noun lexicon shipped in ``resources/`` (see :mod:`core.lexicon`)."""
    from .lexicon import lexicon_path

    try:
        loc = _as_location(lexicon_path(), "bundled")
    except FileNotFoundError:
        loc = None
    if loc is None:
        raise InputError("the bundled WordNet lexicon is missing or damaged; reinstall semscale",
                         file=str(Path(__file__).parent.parent / "resources"), field="wordnet")
    return loc


def _nltk_data_paths() -> list[str]:
    try:
        import nltk.data
    except ImportError:
        return []
    return [str(getattr(p, "path", p)) for p in nltk.data.path]


def find_wordnet(path: Union[str, Path, None] = None) -> WordNetLocation:
    """Locate a WordNet database without downloading anything.

    Order: ``path`` (e.g. ``--wordnet DIR``), ``$SEMSCALE_WORDNET``, WordNet's own
    ``$WNSEARCHDIR`` / ``$WNHOME/dict``, every nltk data folder (``corpora/wordnet`` or
    ``corpora/wordnet.zip``), the system folders (Debian's ``/usr/share/wordnet``), and
    last the noun lexicon bundled with semscale (``bundled`` as ``path`` or
    ``$SEMSCALE_WORDNET`` picks it directly, for results that do not depend on the
    machine). A path that the user named but that holds no database is an error naming it.
    """
    if path is not None and str(path) != "":
        if str(path).strip().lower() == BUNDLED:
            return bundled_wordnet()
        loc = _as_location(Path(path), "argument")
        if loc is None:
            raise InputError(
                "not a WordNet database (expected a folder with data.noun and index.noun, an nltk data "
                "folder with corpora/wordnet, or wordnet.zip)",
                file=str(path),
                field="wordnet",
            )
        return loc
    env = os.environ.get(WORDNET_ENV)
    if env and env.strip().lower() == BUNDLED:
        return bundled_wordnet()
    if env:
        loc = _as_location(Path(env), "env")
        if loc is None:
            raise InputError(
                f"${WORDNET_ENV} does not point at a WordNet database (expected data.noun and index.noun)",
                file=env,
                field="wordnet",
            )
        return loc
    candidates: list[tuple[str, str]] = []
    if os.environ.get("WNSEARCHDIR"):
        candidates.append((os.environ["WNSEARCHDIR"], "wnsearchdir"))
    if os.environ.get("WNHOME"):
        candidates.append((os.path.join(os.environ["WNHOME"], "dict"), "wnsearchdir"))
    for p in _nltk_data_paths():
        for sub in (os.path.join(p, "corpora", "wordnet"), os.path.join(p, "corpora", "wordnet.zip")):
            candidates.append((sub, "nltk"))
    candidates += [(d, "system") for d in SYSTEM_WORDNET_DIRS]
    for p, kind in candidates:
        try:
            loc = _as_location(Path(p), kind)
        except OSError:
            loc = None
        if loc is not None:
            return loc
    try:
        return bundled_wordnet()
    except InputError:
        pass
    raise InputError(
        NO_WORDNET_HELP.replace("{env}", WORDNET_ENV).replace("{system}", ", ".join(SYSTEM_WORDNET_DIRS[:1])),
        field="wordnet",
    )


# ---------------------------------------------------------------- WordNet: reading it


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
        raise InputError("reading WordNet needs the nltk package: pip install nltk", field="wordnet") from None
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
        raise InputError(f"cannot read this WordNet database ({type(e).__name__}: {e})", file=loc.root,
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


# ---------------------------------------------------------------- embedding neighbours


@dataclass
class NeighbourIndex:
    """Category embeddings of a vocabulary under one backbone and template set.

    Build it once (:func:`build_neighbour_index`) and query it for every class.
    """

    names: list[str]
    keys: list[str]
    matrix: np.ndarray  # (len(names), dim), rows L2-normalised
    backbone: str  # the backbone's cache identity
    templates: list[str]

    def query(self, embedding: np.ndarray, *, top: int = 16, min_similarity: Optional[float] = None,
              exclude_keys: Collection[str] = (), uncounted_keys: Collection[str] = ()) -> list[Suggestion]:
        """Nearest names to an (L2-normalised) embedding, most similar first.

        ``exclude_keys`` are never returned (the class's own name). Names whose key is
        in ``uncounted_keys`` (e.g. other classes' names) are returned, so the merge can
        report the collision, but do not count toward ``top``.
        """
        if not self.names:
            return []
        sims = self.matrix @ np.asarray(embedding, dtype=np.float32).reshape(-1)
        order = np.argsort(-sims, kind="stable")
        out: list[Suggestion] = []
        counted = 0
        for j in order:
            s = float(sims[j])
            if min_similarity is not None and s < min_similarity:
                break
            k = self.keys[j]
            if k in exclude_keys:
                continue
            out.append(Suggestion(self.names[j], f"neighbours:{s:.2f}", s, "cosine to the canonical name"))
            if k not in uncounted_keys:
                counted += 1
                if counted >= top:
                    break
        return out


def _prepare_vocabulary(vocabulary: Iterable[str]) -> tuple[list[str], list[str]]:
    names, keys, seen = [], [], set()
    for v in vocabulary:
        n = clean_name(v)
        k = normalise_name(n)
        if k and k not in seen:
            seen.add(k)
            names.append(n)
            keys.append(k)
    return names, keys


def build_neighbour_index(backbone, vocabulary: Iterable[str], templates: Sequence[str], *, cache=None,
                          emit: EventCallback = ignore_events, cancel: Optional[CancelToken] = None,
                          batch_size: int = 256) -> NeighbourIndex:
    """Embed a vocabulary (deduplicated) through :func:`core.embed.embed_names` and its cache."""
    from .embed import embed_names

    names, keys = _prepare_vocabulary(vocabulary)
    templates = list(templates)
    matrix = (embed_names(backbone, names, templates, cache=cache, emit=emit, cancel=cancel, batch_size=batch_size)
              if names else np.zeros((0, backbone.embed_dim), np.float32))
    return NeighbourIndex(names, keys, matrix, backbone.identity, templates)


def neighbour_suggestions(backbone, class_name: str, vocabulary: Union[NeighbourIndex, Iterable[str]],
                          templates: Sequence[str], cache=None, top: int = 16, *,
                          min_similarity: Optional[float] = None, uncounted_keys: Collection[str] = (),
                          emit: EventCallback = ignore_events,
                          cancel: Optional[CancelToken] = None) -> list[Suggestion]:
    """Vocabulary names nearest to ``class_name`` in the backbone's text-embedding space.

    The class's category embedding and the vocabulary's use the same templates and the
    same convention as a sweep (normalised mean over templates), so the similarity is
    the one the classifier will see. The name itself (and its plural, case variants) is
    left out; each suggestion's source records its similarity (``neighbours:0.83``).
    """
    from .embed import embed_names

    index = vocabulary if isinstance(vocabulary, NeighbourIndex) else build_neighbour_index(
        backbone, vocabulary, templates, cache=cache, emit=emit, cancel=cancel)
    q = embed_names(backbone, [clean_name(class_name)], list(templates), cache=cache, emit=emit, cancel=cancel)[0]
    return index.query(q, top=top, min_similarity=min_similarity, exclude_keys={normalise_name(class_name)},
                       uncounted_keys=uncounted_keys)


# ---------------------------------------------------------------- merging


def _class_keys(labels: LabelSet) -> dict[str, set[str]]:
    """Normalised names that belong to each class (its key and every name)."""
    return {c: {normalise_name(c)} | {normalise_name(n) for n in ns} for c, ns in labels.names.items()}


def merge_suggestions(labels: LabelSet, suggestions: Mapping[str, Sequence[Suggestion]], per_class: int,
                      keep_collisions: bool = False) -> LabelSet:
    """A new label set: each class's existing names, then suggestions up to ``per_class`` names.

    Rules: existing names keep their order and sources (an empty source becomes
    ``user``) and are never dropped, even beyond ``per_class``. A suggestion is skipped
    when it duplicates a name already chosen for the class (see :func:`normalise_name`).
    A suggestion that is another class's name, or that would be chosen for two classes,
    is a collision: dropped from every class involved and listed in ``warnings`` (or
    kept, with ``;collision:<class>`` appended to its source, when ``keep_collisions``).
    Classes missing from ``suggestions`` are copied unchanged.
    """
    return _merge(labels, suggestions, per_class, keep_collisions)[0]


def _merge(labels: LabelSet, suggestions: Mapping[str, Sequence[Suggestion]], per_class: int,
           keep_collisions: bool) -> tuple[LabelSet, dict[str, int]]:
    """:func:`merge_suggestions` plus the number of dropped collisions per class."""
    if per_class < 1:
        raise InputError(f"names per class must be at least 1, got {per_class}", field="per-class")
    owners: dict[str, set[str]] = {}
    for c, keys in _class_keys(labels).items():
        for k in keys:
            owners.setdefault(k, set()).add(c)

    Picked = list[tuple[Suggestion, str]]  # (suggestion with its clean name, key)

    def select(banned: Mapping[str, set[str]]) -> tuple[dict[str, Picked], dict[str, list[tuple[Suggestion, str]]]]:
        chosen: dict[str, Picked] = {}
        clashes: dict[str, list[tuple[Suggestion, str]]] = {}
        for c, existing in labels.names.items():
            have = {normalise_name(n) for n in existing}
            picked: Picked = []
            room = per_class - len(existing)
            for s in suggestions.get(c, ()):
                if len(picked) >= room:
                    break
                name = clean_name(s.name)
                k = normalise_name(name)
                if not k or k in have:
                    continue
                have.add(k)
                s = Suggestion(name, s.source, s.score, s.note)
                others = owners.get(k, set()) - {c}
                if not keep_collisions and others:
                    why = "already a name of " + ", ".join(f"'{o}'" for o in sorted(others))
                    clashes.setdefault(c, []).append((s, why))
                elif not keep_collisions and k in banned:
                    why = "also suggested for " + ", ".join(f"'{o}'" for o in sorted(banned[k] - {c}))
                    clashes.setdefault(c, []).append((s, why))
                else:
                    picked.append((s, k))
            chosen[c] = picked
        return chosen, clashes

    # A name chosen for two classes is banned from both and the selection redone (so
    # the outcome does not depend on class order); repeat until nothing is shared.
    banned: dict[str, set[str]] = {}
    while True:
        chosen, clashes = select(banned)
        picked_by: dict[str, set[str]] = {}
        for c, picked in chosen.items():
            for _, k in picked:
                picked_by.setdefault(k, set()).add(c)
        shared = {k: cs for k, cs in picked_by.items() if len(cs) > 1}
        if keep_collisions or not shared:
            break
        for k, cs in shared.items():
            banned.setdefault(k, set()).update(cs)

    names: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    warns = list(labels.warnings)
    dropped: dict[str, int] = {}
    for c, existing in labels.names.items():
        src = list(labels.sources.get(c, []))
        names[c] = list(existing)
        sources[c] = [(src[i] if i < len(src) and src[i] else "user") for i in range(len(existing))]
        for s, k in chosen[c]:
            source = s.source
            others = (owners.get(k, set()) | picked_by.get(k, set())) - {c}
            if others:  # only reachable with keep_collisions
                source += ";collision:" + "/".join(sorted(others))
                warns.append(f"class '{c}': kept '{s.name}' ({s.source}), which is also a name of "
                             + ", ".join(f"'{o}'" for o in sorted(others)))
            names[c].append(s.name)
            sources[c].append(source)
        for s, why in clashes.get(c, []):
            warns.append(f"class '{c}': dropped '{s.name}' ({s.source}): {why}")
            dropped[c] = dropped.get(c, 0) + 1
    return LabelSet(names=names, sources=sources, warnings=warns, path=None), dropped


# ---------------------------------------------------------------- one call for the CLI and GUI


@dataclass
class SuggestReport:
    """What :func:`suggest_for_labels` did, for summaries (counts per class)."""

    labels: LabelSet
    added: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    vocabulary_size: int = 0
    wordnet: Optional[str] = None


def suggest_for_labels(
    labels: LabelSet,
    per_class: int,
    *,
    sources: Sequence[str] = ("wordnet",),
    wordnet_reader=None,
    include_related: bool = False,
    max_senses: Optional[int] = 1,
    backbone=None,
    templates: Optional[Sequence[str]] = None,
    vocabulary: Optional[Sequence[str]] = None,
    max_vocabulary: int = DEFAULT_MAX_VOCABULARY,
    min_similarity: Optional[float] = None,
    cache=None,
    keep_collisions: bool = False,
    emit: EventCallback = ignore_events,
    cancel: Optional[CancelToken] = None,
) -> SuggestReport:
    """Fill every class up to ``per_class`` names from the given sources, in order.

    ``wordnet`` needs ``wordnet_reader`` (:func:`open_wordnet`); ``neighbours`` needs a
    ``backbone`` and ``templates``, and uses ``vocabulary`` or else WordNet noun lemmas
    (limited to ``max_vocabulary``, since CPU text encoding is slow). Each class is
    looked up by its canonical (first) name, falling back to the class key.
    """
    if per_class < 1:
        raise InputError(f"names per class must be at least 1, got {per_class}", field="per-class")
    unknown = [s for s in sources if s not in SUGGESTION_SOURCES]
    if unknown or not sources:
        raise InputError(f"unknown suggestion source '{(unknown or [''])[0]}' (choose from "
                         f"{', '.join(SUGGESTION_SOURCES)})", field="source")
    cancel = cancel or CancelToken()
    queries = {c: (ns[0] if ns else c) for c, ns in labels.names.items()}
    need = {c: max(0, per_class - len(ns)) for c, ns in labels.names.items()}
    found: dict[str, list[Suggestion]] = {c: [] for c in labels.names}
    vocab_size = 0
    for source in dict.fromkeys(sources):
        cancel.raise_if_cancelled()
        if source == "wordnet":
            if wordnet_reader is None:
                raise InputError("the wordnet source needs a WordNet database (see --wordnet)", field="wordnet")
            for c, q in queries.items():
                if not need[c]:
                    continue
                got = wordnet_suggestions(wordnet_reader, q, include_related, max_senses=max_senses)
                if not got and q != c:
                    got = wordnet_suggestions(wordnet_reader, c, include_related, max_senses=max_senses)
                found[c] += got
        else:
            if backbone is None or not templates:
                raise InputError("the neighbours source needs a model (--model) and templates", field="model")
            if vocabulary is None:
                if wordnet_reader is None:
                    raise InputError("the neighbours source needs a vocabulary: pass --vocabulary FILE (one word per "
                                     "line) or make a WordNet database available (see --wordnet)", field="vocabulary")
                words = wordnet_vocabulary(wordnet_reader, [q for c, q in queries.items() if need[c]], max_vocabulary)
            else:
                words = list(vocabulary)
                if len(words) > max_vocabulary:
                    emit(Log(f"vocabulary has {len(words)} entries; using the first {max_vocabulary} "
                             "(raise --max-vocabulary to use more)", "warning"))
                    words = words[:max_vocabulary]
            index = build_neighbour_index(backbone, words, templates, cache=cache, emit=emit, cancel=cancel)
            vocab_size = len(index.names)
            todo = [c for c in labels.names if need[c]]
            if todo:
                from .embed import embed_names

                q_emb = embed_names(backbone, [clean_name(queries[c]) for c in todo], list(templates), cache=cache,
                                    emit=emit, cancel=cancel)
                all_keys = set().union(*_class_keys(labels).values())
                for c, e in zip(todo, q_emb):
                    found[c] += index.query(e, top=need[c] * 2 + 5, min_similarity=min_similarity,
                                            exclude_keys={normalise_name(queries[c])}, uncounted_keys=all_keys)
    merged, dropped = _merge(labels, {c: dedupe_suggestions(v) for c, v in found.items()}, per_class,
                             keep_collisions)
    added = {c: len(merged.names[c]) - len(labels.names[c]) for c in labels.names}
    loc = getattr(wordnet_reader, "semscale_location", None)
    return SuggestReport(merged, added, dropped, vocab_size, loc.describe() if loc else None)


# ---------------------------------------------------------------- class lists

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm".split()
)
# open_clip's cleaned ImageNet names repeat two names; ImageNet's own first lemma tells them apart.
_IMAGENET_RENAMES = {744: "projectile", 836: "sunglass"}


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names open_clip uses (unique; two repeats disambiguated)."""
    import open_clip

    names = list(open_clip.IMAGENET_CLASSNAMES)
    for i, n in _IMAGENET_RENAMES.items():
        if i < len(names):
            names[i] = n
    return names


def _unique_classes(items: Iterable[tuple[str, Optional[int]]], path) -> list[str]:
    out: dict[str, Optional[int]] = {}
    for name, line in items:
        name = str(name).strip()
        if not name:
            continue
        if name in out:
            first = out[name]
            raise InputError(f"class '{name}' is listed twice" + (f" (first on line {first})" if first else ""),
                             file=path, line=line, field="class")
        out[name] = line
    if not out:
        raise InputError("no class names found (the list is empty)", file=path)
    return list(out)


_HEADER_WORDS = {"class", "classname", "class_name", "name", "label", "category"}


def load_class_list(path_or_preset: Union[str, Path]) -> LabelSet:
    """Class names (one name each, source ``class``) from a preset or a file.

    Presets: ``imagenet`` (open_clip's ImageNet-1k names), ``cifar10``, ``cifar100``.
    Files: text (one class per line, ``#`` comments), CSV (a ``class`` column or the
    first column), JSON (a list of names, ``{"0": "tench", ...}``, ImageNet's
    ``{"0": ["n01440764", "tench"]}`` or a labels object), or a dataset folder
    (ImageFolder sub-folders, or a CIFAR folder's label names).
    """
    spec = str(path_or_preset)
    key = spec.strip().lower().replace("-", "")
    if key in CLASS_LIST_PRESETS and not Path(spec).exists():
        classes = {"imagenet": imagenet_classes, "cifar10": lambda: list(CIFAR10_CLASSES),
                   "cifar100": lambda: list(CIFAR100_CLASSES)}[key]()
        ls = labels_from_classes(classes)
        ls.path = key
        return ls
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"class list not found (and not a preset: {', '.join(CLASS_LIST_PRESETS)})", file=spec,
                         field="classes")
    if path.is_dir():
        from .datasets import load_dataset

        ds = load_dataset(path)
        classes = _unique_classes(((c, None) for c in ds.classes), path)
    elif path.suffix.lower() == ".json":
        classes = _classes_from_json(path)
    elif path.suffix.lower() in (".csv", ".tsv"):
        classes = _classes_from_csv(path)
    else:
        text = read_user_text(path)
        classes = _unique_classes(
            ((ln.strip(), i) for i, ln in enumerate(text.splitlines(), 1) if not ln.strip().startswith("#")), path)
    ls = labels_from_classes(classes)
    ls.path = str(path)
    return ls


def _classes_from_csv(path: Path) -> list[str]:
    text = read_user_text(path)
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    col, items, first = 0, [], True
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if first:
            first = False
            header = [c.strip().lower() for c in row]
            hits = [i for i, h in enumerate(header) if h in _HEADER_WORDS]
            if hits:
                col = header.index("class") if "class" in header else hits[0]
                continue
        if col >= len(row) or not row[col].strip():
            raise InputError("missing class name", file=path, line=line, field="class")
        items.append((row[col], line))
    return _unique_classes(items, path)


def _classes_from_json(path: Path) -> list[str]:
    from .labels import _json_line

    text = read_user_text(path)
    data = parse_user_json(text, path)
    if isinstance(data, list):
        if not all(isinstance(x, str) for x in data):
            raise InputError("expected a list of class names (strings)", file=path, line=1)
        return _unique_classes(((x, None) for x in data), path)
    if not isinstance(data, dict):
        raise InputError('expected a list of names or an object {"class": ...}', file=path, line=1)
    keys = list(data)
    indexed = keys and all(k.strip().isdigit() for k in keys)
    if indexed:
        items = []
        for k in sorted(keys, key=lambda k: int(k)):
            v = data[k]
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v):
                v = v[1]  # imagenet_class_index.json: [wnid, name]
            if not isinstance(v, str):
                raise InputError("expected a class name (string)", file=path, line=_json_line(text, k), field=k)
            items.append((v, _json_line(text, k)))
        return _unique_classes(items, path)
    return _unique_classes(((k, _json_line(text, k)) for k in keys), path)


def load_vocabulary(path: Union[str, Path]) -> list[str]:
    """A word list for neighbour ranking: one word or phrase per line, ``#`` comments."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError("vocabulary file not found", file=path, field="vocabulary")
    names, _ = _prepare_vocabulary(
        ln.strip() for ln in read_user_text(path).splitlines() if ln.strip() and not ln.strip().startswith("#"))
    if not names:
        raise InputError("the vocabulary file has no words (one word per line)", file=path, field="vocabulary")
    return names
