"""Control name lists: same counts, seeded, and never a real name."""

import pytest

from core.labels.controls import (RealNames, load_vocabulary, names_kinds, normalise, parse_controls, random_chars,
                           random_words)
from core.util.errors import InputError
from core.labels.labelset import LabelSet, load_labels




LABELS = LabelSet(names={
    "dog": ["dog", "puppy", "hound", "golden retriever"],
    "cat": ["cat", "kitten"],
    "car": ["car", "T-Shirt", "automobile", "motor car", "auto"],
    "tree": ["tree"],
})


def test_normalise():
    assert normalise("T-Shirt ") == "tshirt"
    assert normalise("Café au lait") == "cafeaulait"


def test_parse_controls():
    assert parse_controls("random-words, random-chars,random-words") == ["random-words", "random-chars"]
    assert parse_controls(None) == [] and parse_controls("") == []
    with pytest.raises(InputError, match="unknown control 'nonsense'"):
        parse_controls(["nonsense"])


def check_counts(control: LabelSet, real: LabelSet):
    assert list(control.names) == list(real.names)
    for c, names in real.names.items():
        assert len(control.names[c]) == len(names)
        assert control.names[c][0] == names[0]


def never_real(control: LabelSet, real: LabelSet):
    whole = {normalise(n) for ns in real.names.values() for n in ns}
    words = {normalise(w) for ns in real.names.values() for n in ns for w in n.split()}
    for c, names in control.names.items():
        for n in names[1:]:
            key = normalise(n)
            assert key not in words, n
            assert not any(r in key for r in whole), (n, c)


def test_random_words_keep_counts_exclude_real_names_and_are_seeded():
    vocab = ["doghouse", "Puppy", "retriever", "golden", "piano", "river", "catalog", "lamp", "autograph", "spoon",
             "garden", "window", "pencil", "mountain", "violin", "candle", "bridge", "anchor", "tshirt", "Tree"]
    ctrl = random_words(LABELS, vocab, seed=3)
    check_counts(ctrl, LABELS)
    never_real(ctrl, LABELS)
    extras = [n for ns in ctrl.names.values() for n in ns[1:]]
    assert len(extras) == len(set(extras)) == 3 + 1 + 4
    # every excluded word is excluded for a reason a reader can check
    for bad in ("doghouse", "Puppy", "retriever", "golden", "catalog", "autograph", "tshirt", "Tree"):
        assert bad not in extras and RealNames(LABELS).clashes(bad)
    assert random_words(LABELS, vocab, seed=3).names == ctrl.names
    assert random_words(LABELS, vocab, seed=4).names != ctrl.names
    with pytest.raises(InputError, match="needs 8"):
        random_words(LABELS, vocab[:9], seed=0)


def test_random_chars_keep_lengths():
    ctrl = random_chars(LABELS, seed=1)
    check_counts(ctrl, LABELS)
    never_real(ctrl, LABELS)
    for c, names in LABELS.names.items():
        for real, fake in zip(names[1:], ctrl.names[c][1:]):
            assert len(fake) == len(real) and fake.isalpha() and fake.islower()
    assert random_chars(LABELS, seed=1).names == ctrl.names


def test_default_vocabulary_on_the_demo_labels(tmp_path):
    from core.cli import main

    assert main(["demo-data", "--out", str(tmp_path / "demo"), "--per-class", "1"]) == 0
    labels = load_labels(tmp_path / "demo" / "labels.csv")
    vocab = load_vocabulary()
    assert len(vocab) > 5000 and all(w.strip() for w in vocab[:100])
    kinds = names_kinds(labels, ["random-words", "random-chars"], seed=0)
    assert list(kinds) == ["synonyms", "random-words", "random-chars"]
    for kind in ("random-words", "random-chars"):
        check_counts(kinds[kind], labels)
        never_real(kinds[kind], labels)


def test_vocabulary_file(tmp_path):
    p = tmp_path / "words.txt"
    p.write_text("# my words\npiano\nriver\n\npiano\n", encoding="utf-8")
    assert load_vocabulary(p) == ["piano", "river"]
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(InputError, match="no words") as e:
        load_vocabulary(tmp_path / "empty.txt")
    assert "empty.txt" in str(e.value)


def test_default_vocabulary_is_the_bundled_lexicon_with_a_wordfreq_fallback(monkeypatch):
    from core.labels import lexicon

    words = load_vocabulary()
    nouns = set(lexicon.noun_vocabulary())
    assert set(words) <= nouns and {"piano", "violin", "anchor"} <= set(words)
    assert all(w.isalpha() and w == w.lower() and len(w) >= 3 for w in words)

    def missing(*a, **k):
        raise OSError("lexicon not installed")

    monkeypatch.setattr(lexicon, "noun_vocabulary", missing)
    fallback = load_vocabulary()
    assert len(fallback) > 10000 and "the" in fallback and all(w.isalpha() for w in fallback)
