"""The bundled WordNet noun lexicon: what it holds, that it is the fallback when a machine has
no WordNet, and that its suggestions are those of the full WordNet database.

The comparisons with the full database use Debian's ``wordnet-base`` files when installed
(skipped otherwise); the recorded expectations in ``data/wordnet_expectations.json`` were
written from that full database with nltk's reader and are checked without it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.labels import lexicon
from core import synonyms as syn
from core.labels import wordnet_files

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Path("/usr/share/wordnet")
needs_system_wordnet = pytest.mark.skipif(not (SYSTEM / "data.noun").is_file(),
                                          reason="Debian wordnet-base is not installed")
EXPECTED = json.loads((Path(__file__).parent / "data" / "wordnet_expectations.json").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _no_machine_wordnet(monkeypatch, tmp_path):
    """Only the bundled lexicon can be found (unless a test names a database itself)."""
    import nltk.data

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "no-nltk-data")])
    monkeypatch.setattr(wordnet_files, "SYSTEM_WORDNET_DIRS", (str(tmp_path / "no-system-wordnet"),))
    for var in (syn.WORDNET_ENV, "WNSEARCHDIR", "WNHOME"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def bundled():
    return syn.open_wordnet(syn.bundled_wordnet())


def _as_lists(suggestions):
    return [[s.name, s.source, s.note] for s in suggestions]


# ---------------------------------------------------------------- the file


def test_lexicon_file_is_compact_licensed_and_offsets_are_byte_positions():
    path = lexicon.lexicon_path()
    assert path.stat().st_size < 6_000_000
    with zipfile.ZipFile(path) as z:
        names = sorted(z.namelist())
        assert names == [f"wordnet/{n}" for n in ("LICENSE", "cntlist.rev", "data.noun", "index.noun",
                                                   "lexnames", "noun.exc")]
        data = z.read("wordnet/data.noun")
        licence = z.read("wordnet/LICENSE").decode()
    assert "Princeton University" in licence and "WordNet 3.0 Copyright 2006" in licence
    assert (ROOT / "resources" / lexicon.LICENSE_RELATIVE).read_text() == licence
    # every synset line starts with its own byte offset (what wnids and nltk's reader rely on)
    pos, n_synsets = 0, 0
    for line in data.splitlines(keepends=True):
        if not line.startswith(b"  "):
            assert int(line[:8]) == pos
            head, gloss = line.split(b" | ", 1)
            assert gloss.strip() == b""  # glosses blanked
            n_synsets += 1
        pos += len(line)
    assert n_synsets == 82115  # WordNet 3.0's noun synsets


def test_noun_vocabulary_is_every_index_lemma_in_display_form():
    vocab = lexicon.noun_vocabulary()
    assert len(vocab) == len(set(vocab)) == 117798  # WordNet 3.0 noun lemmas
    assert vocab == lexicon.noun_vocabulary()  # deterministic (and a copy each time)
    assert vocab is not lexicon.noun_vocabulary()
    assert all("_" not in v and v == v.strip() for v in vocab)
    assert {"dog", "ice cream", "great white shark", "aeroplane"} <= set(vocab)
    # index.noun order: sorted by WordNet's underscore spelling
    underscored = [v.replace(" ", "_") for v in vocab]
    assert underscored == sorted(underscored)


@needs_system_wordnet
def test_noun_vocabulary_matches_the_debian_index():
    lemmas = [ln.split(" ", 1)[0].replace("_", " ")
              for ln in (SYSTEM / "index.noun").read_text().splitlines() if ln and not ln.startswith("  ")]
    assert lexicon.noun_vocabulary() == lemmas


@needs_system_wordnet
def test_build_is_reproducible_from_debian_files(tmp_path):
    out = lexicon.build_lexicon(SYSTEM, tmp_path / "lexicon.zip")
    with zipfile.ZipFile(out) as built, zipfile.ZipFile(lexicon.lexicon_path()) as shipped:
        assert built.namelist() == shipped.namelist()
        for n in built.namelist():
            assert built.read(n) == shipped.read(n), n
    assert lexicon.build_lexicon(SYSTEM, tmp_path / "again.zip").read_bytes() == out.read_bytes()
    # only the glosses differ from WordNet's data.noun, byte for byte in place
    full = (SYSTEM / "data.noun").read_bytes()
    blanked = lexicon.read_member("data.noun", out)
    assert len(blanked) == len(full)
    for a, b in zip(full.splitlines(), blanked.splitlines()):
        if not a.startswith(b"  "):
            assert a.split(b" | ")[0] == b.split(b" | ")[0]


# ---------------------------------------------------------------- finding it


def test_bundled_lexicon_is_the_fallback_and_can_be_named():
    loc = syn.find_wordnet()
    assert loc.kind == "bundled" and Path(loc.root) == lexicon.lexicon_path() and loc.entry == "wordnet/"
    assert "[bundled]" in loc.describe()
    assert syn.find_wordnet("bundled") == loc


def test_system_wordnet_and_env_still_win(tmp_path, monkeypatch):
    from tests.core.test_synonyms import write_tiny_wordnet

    tiny = write_tiny_wordnet(tmp_path / "system")
    monkeypatch.setattr(wordnet_files, "SYSTEM_WORDNET_DIRS", (str(tiny),))
    assert syn.find_wordnet().kind == "system"
    monkeypatch.setenv(syn.WORDNET_ENV, "bundled")
    assert syn.find_wordnet().kind == "bundled"
    monkeypatch.setenv(syn.WORDNET_ENV, str(tiny))
    assert syn.find_wordnet().kind == "env"


# ---------------------------------------------------------------- same suggestions as the full database


def test_suggestions_equal_recorded_full_wordnet(bundled):
    for cls, expected in EXPECTED["suggestions"].items():
        got = syn.wordnet_suggestions(bundled, syn.clean_name(cls), include_related=True)
        assert _as_lists(got) == expected, cls
    v = EXPECTED["vocabulary"]
    got = syn.wordnet_vocabulary(bundled, [syn.clean_name(c) for c in v["classes"]], v["max_size"])
    assert got == v["names"]


def test_recorded_expectations_spot_checks():
    # checked by hand with WordNet's own tool (wn streetcar -synsn, wn bear -hypen); n02085620 is
    # ImageNet's Chihuahua class
    # (wn lists a synset's lemmas in file order; suggestions order them by tagged count)
    synonyms = [n for n, src, _ in EXPECTED["suggestions"]["streetcar"] if src == "wordnet"]
    assert synonyms[0] == "streetcar" and sorted(synonyms) == ["streetcar", "tram", "tramcar", "trolley", "trolley car"]
    assert EXPECTED["suggestions"]["n02085620"][0][:2] == ["Chihuahua", "wordnet"]
    assert ["carnivore", "wordnet-hypernym"] in [x[:2] for x in EXPECTED["suggestions"]["bear"]]


@needs_system_wordnet
@pytest.mark.parametrize("group", ["cifar100", "imagenet"])
def test_suggestions_equal_full_wordnet(bundled, group):
    full = syn.open_wordnet(syn.find_wordnet(SYSTEM))
    classes = list(syn.CIFAR100_CLASSES) if group == "cifar100" else syn.imagenet_classes()[::10]
    for cls in classes:
        name = syn.clean_name(cls)
        for related, senses in ((False, 1), (True, 3)):
            a = syn.wordnet_suggestions(bundled, name, related, max_senses=senses)
            b = syn.wordnet_suggestions(full, name, related, max_senses=senses)
            assert a == b, (cls, related)
    names = [syn.clean_name(c) for c in classes[:20]]
    assert syn.wordnet_vocabulary(bundled, names, 2000) == syn.wordnet_vocabulary(full, names, 2000)


# ---------------------------------------------------------------- a fresh machine


def _fresh_machine_cli(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess:
    """``semscale`` in a new process with an empty HOME, no WordNet variables, no nltk data
    and no system WordNet folders: only what ships with semscale."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in (syn.WORDNET_ENV, "WNSEARCHDIR", "WNHOME", "NLTK_DATA", "XDG_CACHE_HOME", "XDG_DATA_HOME",
                        "SEMSCALE_CACHE_DIR")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    code = ("import sys, core.labels.wordnet_files as s; s.SYSTEM_WORDNET_DIRS = (); "
            "from core.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)


def _read_labels(path: Path) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["class"], []).append((row["synonym"], row["source"]))
    return out


def test_fresh_machine_suggest_wordnet_cifar10(tmp_path):
    out = tmp_path / "labels.csv"
    r = _fresh_machine_cli(tmp_path, ["suggest", "--classes", "cifar10", "--source", "wordnet", "--per-class", "4",
                                      "--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert "[bundled]" in r.stderr
    got = _read_labels(out)
    assert list(got) == list(syn.CIFAR10_CLASSES)
    # WordNet 3.0 (wn airplane -synsn: "airplane, aeroplane, plane"), lemmas by tagged count
    # (cntlist.rev: plane 21, airplane 5, aeroplane 0; car 71, automobile 15, auto 2, motorcar 1)
    assert got["airplane"] == [("airplane", "class"), ("plane", "wordnet"), ("aeroplane", "wordnet")]
    assert got["automobile"] == [("automobile", "class"), ("car", "wordnet"), ("auto", "wordnet"),
                                 ("motorcar", "wordnet")]
    assert got["bird"] == [("bird", "class")] and got["ship"] == [("ship", "class")]  # no synonyms in WordNet
    assert sum(len(v) > 1 for v in got.values()) == 8


def test_fresh_machine_suggest_neighbours_demo_vit(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("house\nboat\ntree\n")
    out = tmp_path / "labels.csv"
    r = _fresh_machine_cli(tmp_path, ["suggest", "--classes", str(classes), "--source", "neighbours", "--model",
                                      "demo-vit", "--device", "cpu", "--templates", "plain", "--per-class", "5",
                                      "--max-vocabulary", "400", "--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert "vocabulary 400 names" in r.stderr
    got = _read_labels(out)
    for c in ("house", "boat", "tree"):
        assert len(got[c]) == 5 and got[c][0] == (c, "class")
        sims = [float(src.split(":")[1]) for _, src in got[c][1:]]
        assert all(src.startswith("neighbours:") for _, src in got[c][1:])
        assert sims == sorted(sims, reverse=True)  # ranked, most similar first
    # the vocabulary was WordNet's neighbourhood of the classes, from the bundled lexicon
    bundled = syn.open_wordnet(syn.bundled_wordnet())
    vocab = {syn.normalise_name(n) for n in syn.wordnet_vocabulary(bundled, ["house", "boat", "tree"], 400)}
    assert all(syn.normalise_name(n) in vocab for c in got for n, _ in got[c][1:])
    # the embedding cache went to the (empty) HOME's cache folder, nowhere else
    assert any((tmp_path / "home").rglob("*")), "no cache written under HOME"
