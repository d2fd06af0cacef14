"""Synonym sources: a tiny WordNet written in the real file format, embedding neighbours
with a random tiny CLIP, the dedupe/collision rules, class lists and ``semscale suggest``.

Nothing here needs network access or the Debian ``wordnet-base`` package.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.labels import lexicon
from core import synonyms as syn
from core.labels import wordnet_files
from core.models.openclip import BackboneSpec, load_backbone
from core.embedding.cache import EmbeddingCache
from core.cli import main
from core.util.errors import InputError
from core.labels.labelset import LabelSet, load_labels, labels_from_classes
from core.synonyms import Suggestion, merge_suggestions, normalise_name

# WordNet is read through nltk (an optional dependency); everything else runs without it.
needs_nltk = pytest.mark.skipif(importlib.util.find_spec("nltk") is None, reason="nltk is not installed")

# ---------------------------------------------------------------- a tiny WordNet

# (id, lexicographer file, lemmas, pointers [(symbol, target id)], gloss)
TINY_SYNSETS = [
    ("canine", 5, ["canine", "canid"], [("~", "dog"), ("~", "wolf")], "a carnivorous mammal"),
    ("dog", 5, ["dog", "domestic_dog", "Canis_familiaris"],
     [("@", "canine"), ("~", "puppy"), ("~", "pooch"), ("~", "chihuahua_dog")], "a member of the genus Canis"),
    ("puppy", 5, ["puppy"], [("@", "dog")], "a young dog"),
    ("pooch", 5, ["pooch", "doggie"], [("@", "dog")], "informal terms for dogs"),
    ("chihuahua_dog", 5, ["Chihuahua"], [("@", "dog")], "an old breed of tiny short-haired dog"),
    ("wolf", 5, ["wolf"], [("@", "canine")], "a wild carnivorous mammal"),
    ("frump", 18, ["frump", "dog"], [], "a dull unattractive unpleasant girl or woman"),
    ("feline", 5, ["feline", "felid"], [("~", "cat")], "any of various lithe-bodied mammals"),
    ("cat", 5, ["cat", "true_cat"], [("@", "feline")], "feline mammal usually having thick soft fur"),
    ("car", 6, ["car", "auto", "automobile", "machine", "motorcar"], [], "a motor vehicle with four wheels"),
    # a named individual (instance) that comes first in sense order, like WordNet's Chihuahua
    ("city", 15, ["city", "metropolis"], [("~i", "chihuahua_city")], "a large and densely populated urban area"),
    ("chihuahua_city", 15, ["Chihuahua"], [("@i", "city")], "a city in northern Mexico"),
    # a word whose senses a qualifier tells apart: kite the toy, kite the hawk
    ("kite_toy", 6, ["kite"], [], "plaything consisting of a light frame covered with paper"),
    ("bird", 5, ["bird"], [("~", "hawk")], "warm-blooded egg-laying vertebrates"),
    ("hawk", 5, ["hawk"], [("@", "bird"), ("~", "kite_bird")], "diurnal bird of prey"),
    ("kite_bird", 5, ["kite"], [("@", "hawk")], "any of several small graceful hawks"),
]
# index.noun: lemma -> synset ids in sense order
TINY_INDEX = {
    "auto": ["car"], "automobile": ["car"], "bird": ["bird"], "canid": ["canine"], "canine": ["canine"],
    "canis_familiaris": ["dog"], "car": ["car"], "cat": ["cat"], "chihuahua": ["chihuahua_city", "chihuahua_dog"],
    "city": ["city"], "dog": ["dog", "frump"], "doggie": ["pooch"], "domestic_dog": ["dog"], "felid": ["feline"],
    "feline": ["feline"], "frump": ["frump"], "hawk": ["hawk"], "kite": ["kite_toy", "kite_bird"],
    "machine": ["car"], "metropolis": ["city"], "motorcar": ["car"], "pooch": ["pooch"], "puppy": ["puppy"],
    "true_cat": ["cat"], "wolf": ["wolf"],
}
# tagged-sense counts (cntlist.rev): automobile is more frequent than auto here
TINY_COUNTS = {("car", 6, 0): 50, ("automobile", 6, 0): 10, ("dog", 5, 0): 42}
HEADER = "  1 This is a tiny test database in the WordNet 3.0 file format (not WordNet itself).  \n"


def _data_line(ss, offsets) -> str:
    sid, lex, lemmas, ptrs, gloss = ss
    words = " ".join(f"{w} 0" for w in lemmas)
    p = " ".join(f"{sym} {offsets[t]:08d} n 0000" for sym, t in ptrs)
    return f"{offsets[sid]:08d} {lex:02d} n {len(lemmas):02x} {words} {len(ptrs):03d} {p + ' ' if p else ''}| {gloss}  \n"


def write_tiny_wordnet(root: Path, debian_layout: bool = True, counts: bool = True) -> Path:
    """data.noun with correct byte offsets, index.noun, and (unless Debian-like) lexnames etc."""
    root.mkdir(parents=True, exist_ok=True)
    # offsets are 8 digits, so every line's length is known before the offsets are
    offsets = {ss[0]: 0 for ss in TINY_SYNSETS}
    pos = len(HEADER.encode())
    for ss in TINY_SYNSETS:
        offsets[ss[0]] = pos
        pos += len(_data_line(ss, offsets).encode())
    data = HEADER + "".join(_data_line(ss, offsets) for ss in TINY_SYNSETS)
    (root / "data.noun").write_bytes(data.encode())
    lines = []
    for lemma in sorted(TINY_INDEX):
        ids = TINY_INDEX[lemma]
        lines.append(f"{lemma} n {len(ids)} 0 {len(ids)} 0 " + " ".join(f"{offsets[i]:08d}" for i in ids) + "  \n")
    (root / "index.noun").write_text(HEADER + "".join(lines))
    for name in ("data.adj", "data.adv", "data.verb", "index.adj", "index.adv", "index.verb",
                 "noun.exc", "verb.exc", "adj.exc", "adv.exc"):
        (root / name).write_text("")
    if counts:
        keys = sorted(f"{w.lower()}%1:{lex:02d}:{lid:02d}:: 1 {n}\n" for (w, lex, lid), n in TINY_COUNTS.items())
        # like the real file, it starts with entries sorting before any letter (nltk's binary
        # search never matches the very first line)
        (root / "cntlist.rev").write_text("0%1:23:00:: 1 20\n" + "".join(keys))
    if not debian_layout:  # nltk's own layout also has these
        (root / "lexnames").write_text(syn.LEXNAMES_TEXT)
        (root / "index.sense").write_text("")
    return root


@pytest.fixture(autouse=True)
def _isolated_wordnet(monkeypatch, tmp_path):
    """No test sees this machine's WordNet, nltk data or environment, or leaks nltk.data.path."""
    if importlib.util.find_spec("nltk") is not None:
        import nltk.data

        monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "no-nltk-data")])
    monkeypatch.setattr(wordnet_files, "SYSTEM_WORDNET_DIRS", (str(tmp_path / "no-system-wordnet"),))
    # and no bundled lexicon either (tests/core/test_lexicon.py covers it)
    monkeypatch.setattr(lexicon, "lexicon_path", lambda: tmp_path / "no-lexicon" / "wordnet-nouns.zip")
    for var in (syn.WORDNET_ENV, "WNSEARCHDIR", "WNHOME"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def tiny_wordnet(tmp_path) -> Path:
    return write_tiny_wordnet(tmp_path / "wordnet")


def names(suggestions):
    return [s.name for s in suggestions]


# ---------------------------------------------------------------- WordNet


@needs_nltk
def test_tiny_wordnet_debian_layout_synonyms(tiny_wordnet):
    loc = syn.find_wordnet(tiny_wordnet)
    assert loc.kind == "argument" and "lexnames" in loc.missing and "index.sense" in loc.missing
    reader = syn.open_wordnet(loc)
    got = syn.wordnet_suggestions(reader, "dog")
    assert names(got) == ["dog", "domestic dog", "Canis familiaris"]
    assert {s.source for s in got} == {"wordnet"}
    # every sense: the frump sense comes after the first sense
    assert names(syn.wordnet_suggestions(reader, "dog", max_senses=None)) == [
        "dog", "domestic dog", "Canis familiaris", "frump"]
    # multi-word names, WordNet's own spelling, plurals and case all find the synset
    for query in ("domestic dog", "domestic_dog", "Canis familiaris", "dogs", "DOG"):
        assert names(syn.wordnet_suggestions(reader, query))[:3] == ["dog", "domestic dog", "Canis familiaris"], query
    assert syn.wordnet_suggestions(reader, "red square") == []
    # pinning a sense by synset name or by ImageNet-style wnid
    assert names(syn.wordnet_suggestions(reader, "frump.n.01")) == ["frump", "dog"]
    off = reader.synset("cat.n.01").offset()
    assert names(syn.wordnet_suggestions(reader, f"n{off:08d}")) == ["cat", "true cat"]


@needs_nltk
def test_sense_choice_instances_and_qualifiers(tiny_wordnet):
    reader = syn.open_wordnet(tiny_wordnet)

    def first(name):
        found = syn.lookup_synsets(reader, name)
        return found[0].definition() if found else None

    # the city of Chihuahua is a named individual: the dog breed is the likelier image class
    assert first("Chihuahua") == "an old breed of tiny short-haired dog"
    assert [s.name for s in syn.wordnet_suggestions(reader, "Chihuahua", include_related=True)] == [
        "Chihuahua", "dog", "domestic dog", "Canis familiaris"]
    # qualifiers as dataset class lists write them pick the sense
    assert first("kite") == "plaything consisting of a light frame covered with paper"
    assert first("kite bird") == first("kite (hawk)") == "any of several small graceful hawks"
    assert first("kite (unknown qualifier)") == first("kite")  # a parenthesis that fits nothing: all senses
    assert first("American kite") is None  # a trailing word that is no qualifier: nothing, rather than a guess


@needs_nltk
def test_related_hypernyms_and_hyponyms(tiny_wordnet):
    reader = syn.open_wordnet(tiny_wordnet)
    got = syn.wordnet_suggestions(reader, "dog", include_related=True)
    assert [(s.name, s.source) for s in got] == [
        ("dog", "wordnet"), ("domestic dog", "wordnet"), ("Canis familiaris", "wordnet"),
        ("canine", "wordnet-hypernym"), ("canid", "wordnet-hypernym"),
        ("puppy", "wordnet-hyponym"), ("pooch", "wordnet-hyponym"), ("doggie", "wordnet-hyponym"),
        ("Chihuahua", "wordnet-hyponym"),
    ]
    assert got[0].score > got[3].score  # related names rank below synonyms


@needs_nltk
def test_lemma_counts_rank_within_a_synset(tmp_path):
    with_counts = syn.open_wordnet(write_tiny_wordnet(tmp_path / "a", counts=True))
    assert names(syn.wordnet_suggestions(with_counts, "car")) == ["car", "automobile", "auto", "machine", "motorcar"]
    assert syn.wordnet_suggestions(with_counts, "car")[0].note == "car.n.01 count 50"
    # without cntlist.rev: WordNet's own lemma order
    without = syn.open_wordnet(write_tiny_wordnet(tmp_path / "b", counts=False))
    assert names(syn.wordnet_suggestions(without, "car")) == ["car", "auto", "automobile", "machine", "motorcar"]


@needs_nltk
def test_find_wordnet_nltk_layouts_and_env(tmp_path, monkeypatch):
    import nltk.data

    data = tmp_path / "nltk_data"
    write_tiny_wordnet(data / "corpora" / "wordnet", debian_layout=False)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "elsewhere"), str(data)])
    loc = syn.find_wordnet()
    assert loc.kind == "nltk" and loc.missing == ()
    assert names(syn.wordnet_suggestions(syn.open_wordnet(loc), "cat")) == ["cat", "true cat"]

    # corpora/wordnet.zip, as nltk.downloader leaves it
    zdata = tmp_path / "zipped"
    src = write_tiny_wordnet(tmp_path / "src", debian_layout=False)
    (zdata / "corpora").mkdir(parents=True)
    with zipfile.ZipFile(zdata / "corpora" / "wordnet.zip", "w") as z:
        for f in sorted(src.iterdir()):
            z.write(f, f"wordnet/{f.name}")
    monkeypatch.setattr(nltk.data, "path", [str(zdata)])
    loc = syn.find_wordnet()
    assert loc.entry == "wordnet/" and loc.root.endswith("wordnet.zip")
    assert names(syn.wordnet_suggestions(syn.open_wordnet(loc), "car"))[:2] == ["car", "automobile"]

    # the environment variable wins over nltk data
    env_db = write_tiny_wordnet(tmp_path / "env-db")
    monkeypatch.setenv(syn.WORDNET_ENV, str(env_db))
    assert syn.find_wordnet().kind == "env"


def test_no_wordnet_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(InputError) as e:
        syn.find_wordnet()
    msg = str(e.value)
    assert "no WordNet database found" in msg
    assert "apt-get install wordnet-base" in msg and "nltk.downloader wordnet" in msg and "--wordnet" in msg
    with pytest.raises(InputError, match="not a WordNet database") as e:
        syn.find_wordnet(tmp_path)
    assert str(tmp_path) in str(e.value)
    monkeypatch.setenv(syn.WORDNET_ENV, str(tmp_path / "nope"))
    with pytest.raises(InputError, match="SEMSCALE_WORDNET"):
        syn.find_wordnet()


# ---------------------------------------------------------------- names, dedupe, collisions


@pytest.mark.parametrize("a,b", [
    ("Dog", "dog"), ("dogs", "dog"), ("boxes", "box"), ("berries", "berry"), ("hot_dogs", "Hot dog"),
    ("  great   white  shark ", "great white shark"), ("T-shirt", "t shirt"), ("glasses", "glass"),
    ("café", "cafe"), ("dog.", "dog"), ("churches", "church"),
])
def test_normalise_name_merges(a, b):
    assert normalise_name(a) == normalise_name(b)


@pytest.mark.parametrize("a,b", [("glass", "gla"), ("cat", "car"), ("bus", "bu"), ("iris", "iri"),
                                 ("hot dog", "dog")])
def test_normalise_name_keeps_apart(a, b):
    assert normalise_name(a) != normalise_name(b)


def _labels(d: dict) -> LabelSet:
    return LabelSet(names={c: list(v) for c, v in d.items()}, sources={c: [""] * len(v) for c, v in d.items()})


def test_merge_keeps_user_names_first_and_dedupes():
    labels = _labels({"dog": ["dog", "doggo"], "cat": ["cat"]})
    sug = {"dog": [Suggestion("Dogs", "wordnet"), Suggestion("domestic_dog", "wordnet"), Suggestion("DOGGO", "x"),
                   Suggestion("hound", "wordnet"), Suggestion("pup", "wordnet")],
           "cat": [Suggestion("cat", "wordnet"), Suggestion("true cat", "wordnet")]}
    out = merge_suggestions(labels, sug, per_class=4)
    assert out.names["dog"] == ["dog", "doggo", "domestic dog", "hound"]
    assert out.sources["dog"] == ["user", "user", "wordnet", "wordnet"]
    assert out.names["cat"] == ["cat", "true cat"]
    # never drops the user's names, even past per_class
    assert merge_suggestions(labels, sug, per_class=1).names["dog"] == ["dog", "doggo"]
    with pytest.raises(InputError):
        merge_suggestions(labels, sug, per_class=0)


def test_merge_drops_collisions_with_warnings_or_flags_them():
    labels = _labels({"dog": ["dog"], "wolf": ["wolf"], "cat": ["cat"]})
    sug = {"dog": [Suggestion("Wolf", "neighbours:0.90"), Suggestion("canine", "wordnet-hypernym"),
                   Suggestion("puppy", "wordnet-hyponym"), Suggestion("pooch", "wordnet-hyponym")],
           "wolf": [Suggestion("canine", "wordnet-hypernym"), Suggestion("grey wolf", "wordnet-hyponym")],
           "cat": [Suggestion("kitty", "wordnet")]}
    out = merge_suggestions(labels, sug, per_class=3)
    # 'Wolf' is class wolf's name; 'canine' was suggested for two classes: dropped from both
    assert out.names == {"dog": ["dog", "puppy", "pooch"], "wolf": ["wolf", "grey wolf"], "cat": ["cat", "kitty"]}
    text = "\n".join(out.warnings)
    assert "class 'dog': dropped 'Wolf' (neighbours:0.90): already a name of 'wolf'" in text
    assert "class 'dog': dropped 'canine' (wordnet-hypernym): also suggested for 'wolf'" in text
    assert "class 'wolf': dropped 'canine'" in text
    # the outcome does not depend on class order
    rev = merge_suggestions(_labels({"cat": ["cat"], "wolf": ["wolf"], "dog": ["dog"]}), sug, per_class=3)
    assert {c: rev.names[c] for c in out.names} == out.names

    kept = merge_suggestions(labels, sug, per_class=3, keep_collisions=True)
    assert kept.names["dog"] == ["dog", "Wolf", "canine"]
    assert kept.sources["dog"][1:] == ["neighbours:0.90;collision:wolf", "wordnet-hypernym;collision:wolf"]
    assert kept.sources["wolf"][1] == "wordnet-hypernym;collision:dog"
    assert any("kept 'Wolf'" in w for w in kept.warnings)


@needs_nltk
def test_suggest_for_labels_wordnet_and_save_roundtrip(tiny_wordnet, tmp_path):
    reader = syn.open_wordnet(tiny_wordnet)
    labels = labels_from_classes(["dog", "wolf", "car"])
    rep = syn.suggest_for_labels(labels, 4, wordnet_reader=reader, include_related=True)
    out = rep.labels
    assert out.names["dog"] == ["dog", "domestic dog", "Canis familiaris", "puppy"]  # canine: shared with wolf
    assert out.names["car"] == ["car", "automobile", "auto", "machine"]
    # canine, then canid (the next pick, also wolf's) were dropped from both classes
    assert rep.dropped == {"dog": 2, "wolf": 2}
    out.save(tmp_path / "l.csv")
    back = load_labels(tmp_path / "l.csv")
    assert back.names == out.names and back.sources == out.sources


@needs_nltk
def test_suggest_for_some_classes_sees_every_other_class(tiny_wordnet):
    reader = syn.open_wordnet(tiny_wordnet)
    labels = _labels({"dog": ["dog"], "puppy": ["puppy"], "car": ["car"]})
    rep = syn.suggest_for_classes(labels, ["dog"], 6, wordnet_reader=reader, include_related=True)
    # the report holds every class; only dog was asked for, and puppy (another class's name) is dropped
    assert rep.labels.names["puppy"] == ["puppy"] and rep.labels.names["car"] == ["car"]
    assert rep.added == {"dog": len(rep.labels.names["dog"]) - 1}
    assert rep.labels.names["dog"] == ["dog", "domestic dog", "Canis familiaris", "canine", "canid", "pooch"]
    assert [(d.cls, d.name, d.why) for d in rep.collisions] == [("dog", "puppy", "already a name of 'puppy'")]
    assert rep.dropped == {"dog": 1}
    assert rep.collisions[0].message in rep.labels.warnings
    # all classes asked for: the same as one suggest_for_labels call
    every = syn.suggest_for_classes(labels, ["car", "dog", "puppy"], 3, wordnet_reader=reader)
    assert every.labels.names == syn.suggest_for_labels(labels, 3, wordnet_reader=reader).labels.names
    assert syn.suggest_for_classes(labels, ["nope"], 3, wordnet_reader=reader).labels.names == labels.names


def test_missing_wordnet_is_a_typed_input_error(tmp_path):
    with pytest.raises(syn.WordNetUnavailable) as e:
        syn.find_wordnet(tmp_path)  # an empty folder named by the user
    assert isinstance(e.value, InputError) and e.value.field == "wordnet" and e.value.file == str(tmp_path)
    with pytest.raises(syn.WordNetUnavailable):
        syn.suggest_for_labels(labels_from_classes(["dog"]), 2, wordnet_reader=None)


# ---------------------------------------------------------------- embedding neighbours


@pytest.fixture(scope="module")
def tiny_backbone(tiny_model):
    cfg, ck = tiny_model
    return load_backbone(BackboneSpec(model=cfg, checkpoint=ck, device="cpu"))


VOCAB = ["puppy", "hound", "kitten", "automobile", "truck", "wolf", "banana", "violin", "Dogs", "tree", "river",
         "pooch"]
TEMPLATES = ["a photo of a {}.", "a drawing of the {}."]


def _direct_embedding(backbone, name):
    feats = backbone.encode_texts([t.format(name) for t in TEMPLATES]).numpy().astype(np.float64)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    m = feats.mean(0)
    return m / np.linalg.norm(m)


def test_neighbours_match_direct_cosine(tiny_backbone, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    got = syn.neighbour_suggestions(tiny_backbone, "dog", VOCAB, TEMPLATES, cache=cache, top=5)
    q = _direct_embedding(tiny_backbone, "dog")
    expected = sorted(((float(_direct_embedding(tiny_backbone, w) @ q), w) for w in VOCAB if w != "Dogs"),
                      key=lambda t: -t[0])[:5]
    assert names(got) == [w for _, w in expected]  # 'Dogs' is the class name itself: left out
    for s, (sim, _) in zip(got, expected):
        assert s.score == pytest.approx(sim, abs=1e-4)
        assert s.source == f"neighbours:{s.score:.2f}"
    # min_similarity keeps only near names
    cut = expected[2][0] - 1e-6
    near = syn.neighbour_suggestions(tiny_backbone, "dog", VOCAB, TEMPLATES, cache=cache, top=20,
                                     min_similarity=cut)
    assert names(near) == [w for _, w in expected[:3]]
    # the vocabulary is now cached for this backbone: no text encoding on a second query
    cache.close()
    cache = EmbeddingCache(tmp_path / "cache")
    orig = tiny_backbone.encode_texts
    tiny_backbone.encode_texts = lambda texts: pytest.fail(f"re-encoded {texts[:2]}")
    try:
        again = syn.neighbour_suggestions(tiny_backbone, "dog", VOCAB, TEMPLATES, cache=cache, top=5)
    finally:
        tiny_backbone.encode_texts = orig
        cache.close()
    assert names(again) == names(got)


def test_neighbour_index_uncounted_keys(tiny_backbone):
    index = syn.build_neighbour_index(tiny_backbone, VOCAB, TEMPLATES)
    q = _direct_embedding(tiny_backbone, "dog").astype(np.float32)
    plain = index.query(q, top=3)
    skip = {normalise_name(plain[0].name)}
    more = index.query(q, top=3, uncounted_keys=skip)
    assert names(more)[:3] == names(plain) and len(more) == 4  # returned, but not counted toward top


# ---------------------------------------------------------------- class lists


def test_class_list_presets():
    imnet = syn.load_class_list("imagenet")
    assert len(imnet.names) == 1000 and imnet.names["tench"] == ["tench"] and imnet.sources["tench"] == ["class"]
    assert "projectile" in imnet.names and "sunglass" in imnet.names
    assert list(syn.load_class_list("cifar10").names)[:3] == ["airplane", "automobile", "bird"]
    c100 = syn.load_class_list("cifar100")
    assert len(c100.names) == 100 and c100.names["aquarium_fish"] == ["aquarium fish"]


def test_class_list_files(tmp_path):
    (tmp_path / "a.txt").write_text("# animals\ndog\n\ngreat white shark\n")
    assert list(syn.load_class_list(tmp_path / "a.txt").names) == ["dog", "great white shark"]
    (tmp_path / "a.csv").write_text("id,class\n1,dog\n2,cat\n")
    assert list(syn.load_class_list(tmp_path / "a.csv").names) == ["dog", "cat"]
    (tmp_path / "b.csv").write_text("dog,x\ncat,y\n")
    assert list(syn.load_class_list(tmp_path / "b.csv").names) == ["dog", "cat"]
    (tmp_path / "a.json").write_text(json.dumps(["dog", "cat"]))
    assert list(syn.load_class_list(tmp_path / "a.json").names) == ["dog", "cat"]
    (tmp_path / "idx.json").write_text(json.dumps({"1": ["n02", "goldfish"], "0": ["n01", "tench"]}))
    assert list(syn.load_class_list(tmp_path / "idx.json").names) == ["tench", "goldfish"]
    (tmp_path / "dup.txt").write_text("dog\ncat\ndog\n")
    with pytest.raises(InputError) as e:
        syn.load_class_list(tmp_path / "dup.txt")
    assert f"{tmp_path / 'dup.txt'}:3:" in str(e.value) and "line 1" in str(e.value)
    with pytest.raises(InputError, match="not a preset"):
        syn.load_class_list(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(InputError, match="empty"):
        syn.load_class_list(tmp_path / "empty.txt")


# ---------------------------------------------------------------- CLI


@needs_nltk
def test_cli_suggest_wordnet(tiny_wordnet, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\ncat\ncar\n")
    out = tmp_path / "labels.csv"
    rc = main(["suggest", "--classes", str(classes), "--source", "wordnet", "--wordnet", str(tiny_wordnet),
               "--per-class", "4", "--related", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert cap.out.strip() == str(out)
    assert "dog: 4 names" in cap.err and "3 classes" in cap.err
    back = load_labels(out)
    assert back.names["dog"] == ["dog", "domestic dog", "Canis familiaris", "canine"]
    assert back.sources["dog"] == ["class", "wordnet", "wordnet", "wordnet-hypernym"]
    assert back.names["cat"] == ["cat", "true cat", "feline", "felid"]
    # a labels file as input: its names stay first, the new ones follow
    rc = main(["suggest", "--labels", str(out), "--wordnet", str(tiny_wordnet), "--per-class", "5",
               "--related", "--out", str(tmp_path / "more.csv"), "-q"])
    assert rc == 0
    more = load_labels(tmp_path / "more.csv")
    assert more.names["dog"][:4] == back.names["dog"] and more.names["dog"][4] == "canid"


def test_cli_suggest_neighbours(tiny_model, tmp_path, capsys):
    cfg, ck = tiny_model
    labels = tmp_path / "in.csv"
    labels.write_text("class,synonym\ndog,dog\ndog,doggy\ncar,car\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    out = tmp_path / "out.csv"
    rc = main(["suggest", "--labels", str(labels), "--source", "neighbours", "--model", cfg, "--checkpoint", ck,
               "--device", "cpu", "--templates", "plain", "--vocabulary", str(vocab), "--per-class", "4",
               "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    back = load_labels(out)
    assert back.names["dog"][:2] == ["dog", "doggy"] and len(back.names["dog"]) == 4
    assert back.sources["dog"][:2] == ["user", "user"]
    assert all(s.startswith("neighbours:") for s in back.sources["dog"][2:])
    assert "car" not in back.names["dog"] and "dog" not in [normalise_name(n) for n in back.names["car"][1:]]


@pytest.mark.parametrize("setup,expect", [
    (lambda p: (p / "c.txt").write_text("dog\ndog\n"), "c.txt:2:"),
    (lambda p: (p / "c.txt").write_text("dog\n"), "no WordNet database found"),
])
def test_cli_suggest_bad_input_exit_2(tmp_path, capsys, setup, expect):
    setup(tmp_path)
    rc = main(["suggest", "--classes", str(tmp_path / "c.txt"), "--per-class", "3", "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and expect in lines[0], err


@needs_nltk
def test_cli_neighbours_without_vocabulary_or_model(tmp_path, capsys, tiny_wordnet):
    (tmp_path / "c.txt").write_text("dog\n")
    rc = main(["suggest", "--classes", str(tmp_path / "c.txt"), "--source", "neighbours", "--per-class", "3",
               "--out", str(tmp_path / "o.csv")])
    assert rc == 2 and "--vocabulary" in capsys.readouterr().err
    rc = main(["suggest", "--classes", str(tmp_path / "c.txt"), "--source", "neighbours", "--wordnet",
               str(tiny_wordnet), "--per-class", "3", "--out", str(tmp_path / "o.csv")])
    assert rc == 2 and "needs --model" in capsys.readouterr().err


@needs_nltk
def test_wordnet_vocabulary_puts_class_neighbourhoods_first(tiny_wordnet):
    reader = syn.open_wordnet(tiny_wordnet)
    vocab = syn.wordnet_vocabulary(reader, ["dog", "cat"], max_size=6)
    assert vocab == ["dog", "cat", "domestic dog", "true cat", "Canis familiaris", "feline"]
    full = syn.wordnet_vocabulary(reader, [], max_size=1000)
    assert set(normalise_name(v) for v in full) >= {"dog", "car", "wolf", "frump"}


@needs_nltk
def test_cli_wordnet_then_neighbours(tiny_model, tiny_wordnet, tmp_path, capsys):
    """Sources combine in the order given; WordNet's noun lemmas are the default vocabulary."""
    cfg, ck = tiny_model
    (tmp_path / "c.txt").write_text("dog\ncar\n")
    out = tmp_path / "out.csv"
    rc = main(["suggest", "--classes", str(tmp_path / "c.txt"), "--source", "wordnet,neighbours",
               "--wordnet", str(tiny_wordnet), "--model", cfg, "--checkpoint", ck, "--device", "cpu",
               "--templates", "plain", "--per-class", "5", "--no-cache", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    back = load_labels(out)
    assert back.names["dog"][:3] == ["dog", "domestic dog", "Canis familiaris"]
    assert back.sources["dog"][1:3] == ["wordnet", "wordnet"]
    assert len(back.names["dog"]) == 5 and all(s.startswith("neighbours:") for s in back.sources["dog"][3:])
    vocab = {normalise_name(v) for v in syn.wordnet_vocabulary(syn.open_wordnet(tiny_wordnet), [], 1000)}
    assert {normalise_name(n) for n in back.names["dog"][3:]} <= vocab
    assert "vocabulary" in cap.err


@needs_nltk
def test_corrupt_wordnet_is_an_input_error(tmp_path):
    db = write_tiny_wordnet(tmp_path / "bad")
    (db / "index.noun").write_text("dog n many 0 1 0 00000001  \n")
    with pytest.raises(InputError, match="cannot read this WordNet database") as e:
        syn.open_wordnet(db)
    assert str(db) in str(e.value)
