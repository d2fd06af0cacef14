"""The batched text-cache lookup and embed_names on top of it, against the per-pair API and open_clip."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from core.embedding.cache import EmbeddingCache

IDENT = "b" * 64


def _fill(cache: EmbeddingCache, n_names: int, templates: list[str], dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pairs = [(t, f"name {i}") for i in range(n_names) for t in templates]
    vecs = rng.standard_normal((len(pairs), dim)).astype(np.float32)
    cache.put_texts(IDENT, zip(pairs, vecs))
    return pairs, vecs


@pytest.mark.parametrize("wanted", ["all", "few"])  # one table scan / primary-key lookups
def test_matrix_matches_per_pair_lookup(tmp_path, wanted):
    templates = ["a {}.", "the {}!", "{}"]
    with EmbeddingCache(tmp_path) as c:
        pairs, vecs = _fill(c, 300, templates, 8)
        ask = pairs if wanted == "all" else pairs[10:40]
        ask = ask + [("a {}.", "never stored"), ("new template {}", "name 1"), ask[0]]  # misses and a repeat
        mat, found = c.get_text_matrix(IDENT, ask, 8)
        ref = c.get_texts(IDENT, ask)
    assert found.tolist() == [p in ref for p in ask]
    assert found[:-3].all() and not found[-3] and not found[-2] and found[-1]
    for i, p in enumerate(ask):
        if found[i]:
            np.testing.assert_array_equal(mat[i], ref[p])
        else:
            assert not mat[i].any()
    expected = dict(zip(pairs, vecs))
    np.testing.assert_array_equal(mat[0], expected[ask[0]])


@pytest.mark.parametrize("wanted", ["all", "few"])
def test_damaged_rows_are_missing_and_deleted(tmp_path, wanted):
    templates = ["a {}."]
    with EmbeddingCache(tmp_path) as c:
        pairs, vecs = _fill(c, 50, templates, 4)
        c.put_texts(IDENT, [(pairs[1], np.array([np.nan, 0, 0, 0], np.float32))])  # non-finite, valid CRC
        c.put_texts(IDENT, [(pairs[2], np.ones(6, np.float32))])  # another width: missing, kept
    con = sqlite3.connect(next(tmp_path.glob("*.sqlite")))
    with con:
        con.execute("UPDATE texts SET crc = crc + 1 WHERE name = ?", (pairs[0][1],))  # bit rot
    con.close()
    ask = pairs if wanted == "all" else pairs[:5]
    with EmbeddingCache(tmp_path) as c:
        mat, found = c.get_text_matrix(IDENT, ask, 4)
        assert found.tolist() == [False, False, False] + [True] * (len(ask) - 3)
        np.testing.assert_array_equal(mat[3:], vecs[3 : len(ask)])
        assert c.discarded == 2
        left = c.get_texts(IDENT, pairs[:3])
    assert list(left) == [pairs[2]]  # the damaged two are gone; the other width is not this lookup's to drop


def test_embed_names_cold_warm_and_open_clip(tmp_path, tiny_model):
    """Category embedding = normalised mean over templates of normalised prompts, computed here with
    open_clip directly; a warm call reads it back without building the model."""
    import open_clip
    import torch

    from core.models.openclip import BackboneSpec, load_backbone
    from core.embedding.embed import embed_names

    cfg, ck = tiny_model
    names = ["red square", "lime disc", "navy wedge", "red square"]  # a repeated name
    templates = ["a photo of a {}.", "itap of a {}.", "{}"]
    bb = load_backbone(BackboneSpec(cfg, checkpoint=ck, device="cpu"))
    with EmbeddingCache(tmp_path) as c:
        cold = embed_names(bb, names, templates, cache=c, batch_size=4)
    open_clip.add_model_config(cfg)
    model, _, _ = open_clip.create_model_and_transforms("tiny-clip", pretrained=None)
    open_clip.load_checkpoint(model, ck, weights_only=True)
    model.eval()
    tok = open_clip.get_tokenizer("tiny-clip")
    with torch.no_grad():
        for j, n in enumerate(names):
            f = torch.nn.functional.normalize(model.encode_text(tok([t.format(n) for t in templates])), dim=-1)
            m = f.mean(dim=0)
            np.testing.assert_allclose(cold[j], (m / m.norm()).numpy(), atol=1e-5)
    lazy = load_backbone(BackboneSpec(cfg, checkpoint=ck, device="cpu"), lazy=True)
    with EmbeddingCache(tmp_path) as c:
        warm = embed_names(lazy, names, templates, cache=c)
    assert not lazy.loaded
    np.testing.assert_array_equal(warm, cold)
    with EmbeddingCache(tmp_path) as c:  # a new name: only its prompts are encoded
        more = embed_names(lazy, ["azure pyramid", "lime disc"], templates, cache=c)
        assert len(c.get_texts(lazy.identity, [(t, "azure pyramid") for t in templates])) == 3
    assert lazy.loaded
    np.testing.assert_array_equal(more[1], cold[1])


def test_prompt_encoder_cuts_padding_without_changing_features(tiny_model):
    """The causal text tower run only up to the batch's last end-of-text token gives open_clip's own features,
    also with a prompt longer than the context (nothing to cut) in the batch."""
    from core.models.openclip import BackboneSpec, load_backbone
    from core.models.openclip import PromptEncoder

    cfg, ck = tiny_model
    bb = load_backbone(BackboneSpec(cfg, checkpoint=ck, device="cpu"))
    enc = PromptEncoder(bb)
    short = ["a red square.", "itap of a lime disc.", "navy wedge"]
    long = short + [" ".join(["a very long prompt"] * 10)]
    for texts in (short, long):
        np.testing.assert_allclose(enc(texts).numpy(), bb.encode_texts(texts).numpy(), atol=1e-5)
    assert enc.checked is True
    tokens = bb.tokenizer(short)
    assert int(tokens.argmax(dim=-1).max()) + 1 < tokens.shape[1]  # the short batch really was cut
