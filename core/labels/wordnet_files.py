"""Finding a WordNet database on this machine (nothing is ever downloaded).

An explicit path, ``$SEMSCALE_WORDNET``, WordNet's own variables, nltk data folders, the
system folders, and last the noun lexicon bundled with semscale (:mod:`core.labels.lexicon`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from core.labels.lexicon import LEXNAMES_TEXT, lexicon_path  # noqa: F401  (re-exported)
from core.util.errors import InputError


class WordNetUnavailable(InputError):
    """No WordNet database could be found or read; the message says where and how to get one."""



WORDNET_ENV = "SEMSCALE_WORDNET"
BUNDLED = "bundled"  # --wordnet bundled / $SEMSCALE_WORDNET=bundled: the lexicon in resources/

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

NO_WORDNET_HELP = (
    "no WordNet database found (looked at --wordnet, ${env}, nltk data folders, {system} and the lexicon "
    "bundled with semscale, which is missing: reinstall semscale to get it back); "
    "install one with 'apt-get install wordnet-base' (Debian/Ubuntu), or run "
    "'python -m nltk.downloader wordnet' on a machine with network and copy the nltk_data folder here, "
    "or point --wordnet DIR (or ${env}) at a folder holding data.noun and index.noun"
)


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
    """The WordNet 3.0 noun lexicon shipped in ``resources/`` (see :mod:`core.labels.lexicon`)."""
    try:
        loc = _as_location(lexicon_path(), "bundled")
    except FileNotFoundError:
        loc = None
    if loc is None:
        raise WordNetUnavailable("the bundled WordNet lexicon is missing or damaged; reinstall semscale",
                         file=str(Path(__file__).resolve().parents[2] / "resources"), field="wordnet")
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
            raise WordNetUnavailable(
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
            raise WordNetUnavailable(
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
    except WordNetUnavailable:
        pass
    raise WordNetUnavailable(
        NO_WORDNET_HELP.replace("{env}", WORDNET_ENV).replace("{system}", ", ".join(SYSTEM_WORDNET_DIRS[:1])),
        field="wordnet",
    )
