"""The bundled demo VLM: loads with plain ``transformers``, answers demo images, keeps its measured
figures (accuracy and the link to training frequency), and its trainer is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from core.demo import data  # noqa: E402
from core.demo import train_vlm  # noqa: E402

MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "demo-vlm"

# Measured on the first 10 images per class of the demo set (seed 0) with the shipped files;
# the floors sit a few points under (docs/demo.md has the 30-per-class figures).
SLICE_PER_CLASS = 10
FLOORS = {
    "open_top1": 0.85,  # measured 0.900 on 10 per class, 0.903 on 30
    "likelihood_top1": 0.85,  # measured 0.900 on 10, 0.907 on 30
    "spearman_open_vs_frequency": 0.70,  # measured +0.80 on 10, +0.73 on 30 (demo-vit: +0.26, +0.30)
}


@pytest.fixture(scope="module")
def shipped():
    if not (MODEL / "config.json").is_file():
        pytest.fail(f"{MODEL} is missing the bundled demo-vlm")
    torch.set_num_threads(2)
    return train_vlm.load(MODEL)


@pytest.fixture(scope="module")
def slice_set():
    return train_vlm.eval_set(seed=0, n_per_class=SLICE_PER_CLASS)


def test_loads_and_answers_with_transformers_alone(slice_set) -> None:
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(MODEL)
    model = LlavaForConditionalGeneration.from_pretrained(MODEL).eval()
    assert type(processor).__name__ == "LlavaProcessor"
    images, true, _ = slice_set
    image = images[0]  # the first house of the demo set
    assert data.DEMO_CLASSES[true[0]] == "house"
    messages = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": "What type of object is in this photo?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text.endswith("What type of object is in this photo? ASSISTANT:")
    inputs = processor(images=image, text=text, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=64, do_sample=False)
    answer = processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert answer == "house"
    size = sum(f.stat().st_size for f in MODEL.iterdir() if f.is_file())
    assert size <= 20 * 2 ** 20


def test_model_card_and_recorded_figures() -> None:
    card = (MODEL / "README.md").read_text(encoding="utf-8")
    assert "random synthetic data" in card.lower()
    recorded = json.loads((MODEL / "semscale.json").read_text())
    assert recorded["recipe"]["seed"] == train_vlm.VlmConfig().seed
    assert recorded["recipe"]["steps"] == train_vlm.VlmConfig().steps
    assert recorded["eval"]["eval_set"] == train_vlm.EVAL_SET


def test_figures_on_a_fixed_slice(shipped, slice_set) -> None:
    model, processor = shipped
    images, true, _ = slice_set
    r = train_vlm.evaluate(model, processor, images, true)
    assert r["open_top1"] >= FLOORS["open_top1"]
    assert r["likelihood_top1"] >= FLOORS["likelihood_top1"]
    assert r["open_any_name_top1"] >= r["open_top1"] - 0.05
    rho = train_vlm.frequency_link(r["per_class_open"])
    assert rho >= FLOORS["spearman_open_vs_frequency"]
    # Independently: pandas' rank correlation over the same per-class table.
    import pandas as pd

    freqs = data.vlm_training_frequencies()
    table = pd.DataFrame({"acc": r["per_class_open"], "freq": freqs})
    assert rho == pytest.approx(table["acc"].corr(table["freq"], method="spearman"), abs=1e-9)
    # Per-class open accuracy is the mean credit of that class's images.
    credits = [train_vlm.match_credit(a, [[c] for c in data.DEMO_CLASSES], int(t))
               for a, t in zip(r["answers"], true)]
    assert r["open_top1"] == pytest.approx(np.mean(credits))
    # demo-vit (same encoder, contrastive head, balanced across names) shows a weaker link.
    vit = train_vlm.demo_vit_per_class(images, true)
    assert train_vlm.frequency_link(vit) < rho - 0.3


def test_likelihood_equals_an_independent_forward(shipped, slice_set) -> None:
    """Mean token log-probability of " name" after the generation prompt, one full pass per name."""
    model, processor = shipped
    images, _, _ = slice_set
    names = ["house", "moon", "crescent", "sweetheart"]
    fast = train_vlm.name_logprobs(model, processor, images[:2], names)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": data.VLM_PROMPT}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    for i, image in enumerate(images[:2]):
        n_prompt = processor(images=image, text=prompt, return_tensors="pt")["input_ids"].shape[1]
        for j, name in enumerate(names):
            enc = processor(images=image, text=prompt + " " + name, return_tensors="pt")
            ids = enc["input_ids"][0]
            with torch.no_grad():
                logp = torch.log_softmax(model(**enc).logits[0].float(), dim=-1)
            steps = range(n_prompt, len(ids))
            expected = np.mean([float(logp[t - 1, ids[t]]) for t in steps])
            assert fast[i, j] == pytest.approx(expected, abs=1e-4)


def test_answer_matching_by_hand() -> None:
    first = [[c] for c in data.DEMO_CLASSES]
    house, ball, star, moon = (data.DEMO_CLASSES.index(c) for c in ("house", "ball", "star", "moon"))
    assert train_vlm.match_credit("house", first, house) == 1.0
    assert train_vlm.match_credit("A House.", first, house) == 1.0
    assert train_vlm.match_credit("a ball or a house", first, house) == 0.5
    assert train_vlm.match_credit("a ball", first, house) == 0.0
    assert train_vlm.match_credit("houses", first, house) == 0.0  # whole words only
    assert train_vlm.match_credit("starlet", first, star) == 0.0
    every = [data.demo_labels()[c] for c in data.DEMO_CLASSES]
    assert train_vlm.match_credit("an orb", every, moon) == 0.5  # "orb" is a ball and a moon name
    assert train_vlm.match_credit("crescent", every, moon) == 1.0
    assert train_vlm.match_credit("crescent", every, ball) == 0.0


def test_batches_train_on_answers_only() -> None:
    cfg = train_vlm.VlmConfig(hidden=32, layers=1, intermediate=64, vision_init="random", vocab_size=400)
    _, processor = train_vlm.build_model(cfg)
    examples = [data.VlmExample(data.render_image("moon", "B", np.random.default_rng(0)), data.VLM_PROMPT,
                                "crescent"),
                data.VlmExample(data.render_image("boat", "A", np.random.default_rng(1)),
                                data.VLM_CAPTION_PROMPTS[0], "a photo of a red boat.")]
    batch = train_vlm.Batcher(processor)(examples)
    tok = processor.tokenizer
    for row, e in zip(range(2), examples):
        kept = batch["labels"][row][batch["labels"][row] != -100].tolist()
        assert tok.decode(kept) == f" {e.answer}</s>"
        n = int(batch["attention_mask"][row].sum())
        assert batch["input_ids"][row][n - len(kept):n].tolist() == kept
    # 64 image tokens (8 x 8 patches of the 32 px input; the class token is dropped).
    assert int((batch["input_ids"][0] == tok.convert_tokens_to_ids("<image>")).sum()) == 64


def _tiny_run(out: Path, seed: int) -> dict[str, "torch.Tensor"]:
    from safetensors.torch import load_file

    assert train_vlm.main(["--out", str(out), "--seed", str(seed), "--steps", "3", "--batch-size", "4",
                           "--hidden", "32", "--layers", "1", "--intermediate", "64", "--vision-init", "random",
                           "--threads", "1", "--no-eval"]) == 0
    return load_file(out / "model.safetensors")


def test_training_entry_point_is_deterministic(tmp_path: Path) -> None:
    a = _tiny_run(tmp_path / "a", seed=11)
    b = _tiny_run(tmp_path / "b", seed=11)
    c = _tiny_run(tmp_path / "c", seed=12)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if k in c and a[k].shape == c[k].shape)
    summary = json.loads((tmp_path / "a" / "semscale.json").read_text())
    assert summary["steps"] == 3 and summary["examples"] == 12
    assert np.isfinite(summary["final_loss"])
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    LlavaForConditionalGeneration.from_pretrained(tmp_path / "a")
    assert AutoProcessor.from_pretrained(tmp_path / "a").tokenizer.chat_template == train_vlm.CHAT_TEMPLATE


def test_vision_tower_is_demo_vits_encoder(shipped, slice_set) -> None:
    """The shipped tower reproduces demo-vit's open_clip encoder layer outputs on the same pixels."""
    from resources import path

    from core.demo.train import load_demo_model

    model, _ = shipped
    clip, preprocess, _ = load_demo_model("demo-vit", Path(path("models")))
    v = clip.visual
    images, _, _ = slice_set
    x = torch.stack([preprocess(im) for im in images[::25]])
    with torch.no_grad():
        z = v.conv1(x).flatten(2).transpose(1, 2)
        z = torch.cat([v.class_embedding.expand(len(x), 1, -1), z], dim=1) + v.positional_embedding
        z = v.transformer(v.ln_pre(z))
        hf = model.model.vision_tower(pixel_values=x, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(hf, z, atol=1e-4)
