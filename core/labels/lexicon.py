"""The WordNet 3.0 noun lexicon bundled in ``resources/wordnet`` (works with no system WordNet).

Suggestions, embedding-neighbour vocabularies and control names all need WordNet's
nouns, and a fresh machine, a pip install or the frozen app has no WordNet database.
The bundled lexicon is WordNet's own noun files in a zip that nltk's reader opens like
``nltk_data/corpora/wordnet.zip``, so suggestions from it are those of the full database:

* ``data.noun`` with every gloss blanked to spaces of the same length. Synset offsets are
  byte offsets into this file (and ImageNet's wnids are ``n%08d`` of them), so blanking
  instead of deleting keeps every offset, and runs of spaces compress to almost nothing.
  Each line keeps the synset's lemmas, lexicographer file, and all pointers (hypernyms,
  instance hypernyms, hyponyms, …).
* ``index.noun`` (lemmas, sense counts, senses in frequency order), ``noun.exc``
  (irregular plurals), the noun lines of ``cntlist.rev`` (tagged sense counts, which
  order a synset's lemmas), ``lexnames``, and WordNet's licence.

:func:`build_lexicon` writes it from a WordNet 3.0 folder (Debian's ``wordnet-base``),
byte for byte the same for the same input; ``build_scripts/build_lexicon.py`` runs it.
"""

from __future__ import annotations

import io
import re
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

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

LEXICON_RELATIVE = "wordnet/wordnet-nouns.zip"
LICENSE_RELATIVE = "wordnet/LICENSE"
ENTRY = "wordnet/"  # folder inside the zip, as in nltk_data's wordnet.zip
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip timestamps: the same bytes on every build

def wordnet_license(data_noun: bytes) -> str:
    """The licence WordNet prints at the top of every database file, as plain text."""
    lines = []
    for line in data_noun.decode("utf-8").splitlines():
        if not line.startswith("  "):
            break
        lines.append(re.sub(r"^\s*\d+ ?", "", line).rstrip())
    return "WordNet Release 3.0\n\n" + "\n".join(lines).strip() + "\n"


def lexicon_path() -> Path:
    """The bundled lexicon zip (a checkout, a pip install and the frozen app alike)."""
    from resources import path

    return path(LEXICON_RELATIVE)


def _blank_glosses(data: bytes) -> bytes:
    """``data.noun`` with each synset's gloss replaced by spaces (same length, same offsets)."""
    out = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"  "):  # licence header lines
            out.append(line)
            continue
        cut = line.index(b" | ") + 3
        end = len(line) - len(line.rstrip(b"\r\n"))
        out.append(line[:cut] + b" " * (len(line) - cut - end) + line[len(line) - end:])
    return b"".join(out)


def _noun_counts(data: bytes) -> bytes:
    """The noun lines (sense keys ``lemma%1:…``) of ``cntlist.rev``, still sorted by key."""
    return b"".join(ln for ln in data.splitlines(keepends=True) if b"%1:" in ln.split(b" ", 1)[0])


def build_lexicon(wordnet_dir: Union[str, Path], out: Union[str, Path]) -> Path:
    """Write the bundled lexicon zip from a WordNet 3.0 database folder; returns ``out``."""
    src = Path(wordnet_dir)
    data_noun = (src / "data.noun").read_bytes()
    blanked = _blank_glosses(data_noun)
    if len(blanked) != len(data_noun):
        raise ValueError(f"{src / 'data.noun'}: blanking glosses changed the file size")
    members = {
        "LICENSE": wordnet_license(data_noun).encode(),
        "cntlist.rev": _noun_counts((src / "cntlist.rev").read_bytes()),
        "data.noun": blanked,
        "index.noun": (src / "index.noun").read_bytes(),
        "lexnames": LEXNAMES_TEXT.encode(),
        "noun.exc": (src / "noun.exc").read_bytes(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in sorted(members):
            info = zipfile.ZipInfo(ENTRY + name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, members[name], compresslevel=9)
    out.write_bytes(buf.getvalue())
    return out


def read_member(name: str, lexicon: Optional[Path] = None) -> bytes:
    """One file of the lexicon (``index.noun``, ``LICENSE`` …)."""
    with zipfile.ZipFile(lexicon or lexicon_path()) as z:
        return z.read(ENTRY + name)


@lru_cache(maxsize=4)
def _noun_vocabulary(lexicon: Optional[Path]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for line in read_member("index.noun", lexicon).decode("utf-8").splitlines():
        if not line or line.startswith(" "):
            continue
        name = " ".join(line.split(" ", 1)[0].split("_"))
        if name and name not in seen:
            seen.add(name)
            out.append(name)
    return tuple(out)


def noun_vocabulary(lexicon: Optional[Path] = None) -> list[str]:
    """Every WordNet noun lemma, display form ('ice cream'), unique, in ``index.noun`` order.

    The order is WordNet's (sorted by lemma bytes), so the list is the same on every
    machine; it is read from the bundled lexicon in well under a second.
    """
    return list(_noun_vocabulary(lexicon))
