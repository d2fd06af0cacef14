"""Answer matching on hand-written answers: whole words through the one name normaliser, the
published substring rule, and the 1 / 1/m / 0 credit."""

from __future__ import annotations

import pytest

from core.models.prompts import closed_prompt
from core.stats.answers import AnswerMatcher, credit, match_answers, words

LEVEL = {
    "cat": ["cat", "kitty", "house cat"],
    "dog": ["dog", "puppy"],
    "sea lion": ["sea lion"],
    "lion": ["lion"],
    "no entry sign": ["no"],  # a one-word name that is a common English word
}


@pytest.mark.parametrize("answer,true,names,classes,cr", [
    ("A cat.", "cat", ["cat"], ["cat"], 1.0),
    ("Cats", "cat", ["cat"], ["cat"], 1.0),  # plural through the normaliser
    ("This photo shows two adorable KITTIES sleeping on a sofa.", "cat", ["kitty"], ["cat"], 1.0),  # verbose
    ("I notice nothing unusual", "no entry sign", [], [], 0.0),  # "no" inside "notice"/"nothing"
    ("No, it's a sign.", "no entry sign", ["no"], ["no entry sign"], 1.0),
    ("A. dog", "dog", ["dog"], ["dog"], 1.0),  # "A." style answer
    ("A.", "dog", [], [], 0.0),
    ("dog", "dog", ["dog"], ["dog"], 1.0),
    ("a puppy or a cat", "dog", ["puppy", "cat"], ["cat", "dog"], 0.5),
    ("a sea lion", "sea lion", ["sea lion", "lion"], ["sea lion", "lion"], 0.5),  # a shared word: a tie
    ("The lion.", "sea lion", ["lion"], ["lion"], 0.0),
    ("house-cat", "cat", ["house cat", "cat"], ["cat"], 1.0),  # punctuation between words
    ("Category: vehicle", "cat", [], [], 0.0),  # "cat" inside "category"
    ("", "cat", [], [], 0.0),
    (None, "cat", [], [], 0.0),
])
def test_whole_word_matching_and_credit(answer, true, names, classes, cr):
    m = AnswerMatcher(LEVEL).match(answer, true)
    assert sorted(m.names) == sorted(names)
    assert m.classes == [c for c in LEVEL if c in classes]  # the level's order
    assert m.credit == pytest.approx(cr)


def test_a_one_letter_name_matches_only_the_word():
    m = AnswerMatcher({"letter a": ["A"], "apple": ["apple"]})
    assert m.match("A.", "letter a").classes == ["letter a"]
    assert m.match("An apple", "apple").classes == ["apple"]  # no "a" inside "an" or "apple"
    assert m.match("a red apple", "apple").credit == 0.5


def test_substring_rule_is_the_published_one():
    """``label.lower() in pred.lower()``, checked against that expression written out."""
    level = {"cat": ["cat"], "no entry sign": ["no"], "dog": ["dog"], "hot dog": ["hot_dog"]}
    answers = ["I notice a Category", "DOGS", "a hot dog", "nothing", "Cat"]
    got = match_answers(answers, ["cat"] * len(answers), level, rule="substring")
    for a, m in zip(answers, got):
        expected = {c for c, ns in level.items() for n in ns if n.replace("_", " ").lower() in a.lower()}
        assert set(m.classes) == expected
    assert got[0].classes == ["cat", "no entry sign"] and got[0].credit == 0.5  # the rule's known false hits
    assert got[3].classes == ["no entry sign"] and got[3].credit == 0.0


def test_credit_and_words():
    assert credit(["a"], "a") == 1.0
    assert credit(["a", "b", "c"], "b") == pytest.approx(1 / 3)
    assert credit(["a", "b"], "c") == 0.0
    assert credit([], "a") == 0.0
    assert words("Hot_Dogs! and Glasses") == ("hot", "dog", "and", "glass")
    assert words("Café") == ("cafe",)
    with pytest.raises(ValueError):
        AnswerMatcher(LEVEL, rule="regex")


def test_closed_prompt_lists_each_name_once_in_a_seeded_order():
    names = ["cat", "dog", "cat", "sea lion", "lion"]
    a = closed_prompt("What is it?", names, seed=0, image_key="img1")
    assert a == closed_prompt("What is it?", names, seed=0, image_key="img1")
    assert a.startswith('What is it? Choose one from "') and a.endswith('"')
    listed = a[len('What is it? Choose one from "'):-1].split(", ")
    assert sorted(listed) == ["cat", "dog", "lion", "sea lion"]
    orders = {closed_prompt("q", names, seed=0, image_key=f"img{i}") for i in range(20)}
    assert len(orders) > 1  # shuffled per image


def test_answer_rows_and_unmatched_answers_per_class(tmp_path):
    import pandas as pd

    from core.stats.answers import answer_rows, frequent_unmatched, unmatched_share

    level1 = {"cat": ["cat"], "dog": ["dog"]}
    level2 = {"cat": ["cat", "kitty"], "dog": ["dog", "puppy"]}
    images = ["c1.png", "c2.png", "c3.png", "d1.png", "d2.png"]
    true = ["cat", "cat", "cat", "dog", "dog"]
    answers = ["A kitty, \"maybe\",\nsleeping", "Kitties!", "kitties", "a puppy", None]
    rows = answer_rows("vlm", images, true, answers, 1, level1) + answer_rows("vlm", images, true, answers, 2, level2)
    assert len(rows) == 8  # the image without an answer has no row
    by = {(r["image"], r["level"]): r for r in rows}
    assert by[("c1.png", 1)]["matched_classes"] == "" and by[("c1.png", 2)]["credit"] == 1.0
    assert by[("c1.png", 2)]["matched_names"] == "kitty" and by[("d1.png", 2)]["matched_classes"] == "dog"
    assert unmatched_share(rows[:4]) == 1.0 and unmatched_share(rows[4:]) == 0.0 and unmatched_share([]) is None

    # raw text survives a CSV round trip exactly (quotes, commas, newline)
    p = tmp_path / "answers.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    back = pd.read_csv(p, keep_default_na=False)
    assert back["answer"].tolist() == [r["answer"] for r in rows]

    # only answers unmatched at an image's highest level count; "Kitties!"/"kitties" group together
    level1_only = pd.DataFrame(answer_rows("vlm", images, true, answers, 1, level1))
    top = frequent_unmatched(level1_only)
    assert top.to_dict("records")[:2] == [
        {"backbone": "vlm", "true_class": "cat", "answer": "Kitties!", "count": 2, "share": 2 / 3},
        {"backbone": "vlm", "true_class": "cat", "answer": "A kitty, \"maybe\",\nsleeping", "count": 1, "share": 1 / 3}]
    assert top[top["true_class"] == "dog"]["answer"].tolist() == ["a puppy"]
    assert frequent_unmatched(back).empty  # at level 2 every answer matched
