"""The engine's shape: layered packages without import cycles, and the model-kind protocol,
exercised by a kind defined here (the worked example of docs/architecture.md)."""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import core
from core.models import registry
from core.models.base import EncodedBatch, EmbeddingModel, ImageScores, ScoringModel, identity_hash
from core.util.config import BackboneSpec

ROOT = Path(__file__).resolve().parents[2]


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), imports inside functions included."""
    mods = sorted(m for m in graph.modules if m.startswith("core"))
    adj = {m: sorted(x for x in graph.find_modules_directly_imported_by(m) if x.startswith("core")) for m in mods}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in mods:
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles_in_core():
    assert _cycles(grimp.build_graph("core")) == []


def test_layers_contract_lists_every_package_and_few_loose_modules():
    """The import-linter layers contract names every package of core; the top holds only faces."""
    text = (ROOT / "pyproject.toml").read_text()
    block = text[text.index('type = "layers"'):]
    layers = re.findall(r'"(core\.[a-z_]+)"', block[: block.index("]")])
    packages = sorted(f"core.{p.name}" for p in (ROOT / "core").iterdir() if (p / "__init__.py").is_file())
    assert sorted(set(layers) - {"core.cli", "core.api"}) == packages
    loose = sorted(p.name for p in (ROOT / "core").glob("*.py"))
    assert loose == ["__init__.py", "api.py", "cli.py"]
    # the architecture page names every layer, in the contract's order
    doc = (ROOT / "docs" / "architecture.md").read_text()
    positions = [doc.index(f"`{layer}`") for layer in layers]
    assert positions == sorted(positions)


def test_moved_modules_still_import():
    import core.backbones
    import core.config
    import core.models.openclip
    import core.util.config
    from core.store import open_store  # noqa: F401  (documented in docs/scale-out.md)

    assert core.backbones is core.models.openclip and core.config is core.util.config


# ---------------------------------------------------------------- a kind, defined here

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


class MeanColour(EmbeddingModel):
    """A toy embedding kind: an image is its mean RGB, a prompt the colour word it contains."""

    kind = "mean-colour"

    def __init__(self, spec: BackboneSpec) -> None:
        self.spec, self.name = spec, spec.display
        self.identity_info = {"kind": self.kind, "version": 1}
        self.identity = identity_hash(self.identity_info)
        self.requests = 0

    embed_dim = 3
    logit_scale = 100.0

    def embed_texts(self, prompts):
        self.requests += 1
        v = np.array([next(c for w, c in COLOURS.items() if w in p) for p in prompts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def embed_records(self, dataset, indices, *, batch_size=64, num_workers=None, emit=None, cancel=None):
        for s in range(0, len(indices), batch_size):
            chunk = list(indices[s : s + batch_size])
            self.requests += 1
            v = np.stack([np.asarray(dataset.open(i).convert("RGB"), np.float32).mean(axis=(0, 1)) for i in chunk])
            yield EncodedBatch(chunk, (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32))


class Brightness(ScoringModel):
    """A toy scoring kind: scores each name by how well the image's mean RGB matches its colour."""

    kind = "brightness"

    def __init__(self, spec: BackboneSpec) -> None:
        self.spec, self.name = spec, spec.display
        self.identity_info = {"kind": self.kind}
        self.identity = identity_hash(self.identity_info)

    def score_names(self, dataset, indices, names, *, cache=None, emit=None, cancel=None):
        rgb = np.stack([np.asarray(dataset.open(i).convert("RGB"), np.float32).mean(axis=(0, 1)) / 255
                        for i in indices])
        C = np.array([next(c for w, c in COLOURS.items() if w in n) for n in names], dtype=np.float32)
        return ImageScores(np.asarray(indices), (-((rgb[:, None, :] - C[None]) ** 2).sum(-1)).astype(np.float32),
                           n_computed=len(indices))


@pytest.fixture
def colour_kinds():
    made = {}

    def build(cls):
        def factory(spec, *, lazy=True):
            made[cls.kind] = cls(spec)
            return made[cls.kind]
        return factory

    registry.register(registry.KindEntry("mean-colour", build(MeanColour), prefix="mean-colour:"))
    registry.register(registry.KindEntry("brightness", build(Brightness), prefix="brightness:"))
    yield made
    registry.unregister("mean-colour")
    registry.unregister("brightness")


@pytest.fixture
def colour_dataset(tmp_path):
    rng = np.random.default_rng(0)
    base = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (20, 40, 210)}
    for cls, rgb in base.items():
        (tmp_path / "images" / cls).mkdir(parents=True)
        for j in range(4):
            px = np.clip(np.array(rgb) + rng.integers(-20, 20, size=(8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(tmp_path / "images" / cls / f"{j}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\nred,red\nred,crimson red\ngreen,green\ngreen,leaf green\nblue,blue\nblue,sky blue\n")
    return tmp_path / "images", labels


def test_a_kind_defined_outside_the_engine_runs_a_sweep(colour_kinds, colour_dataset, tmp_path):
    images, labels = colour_dataset
    assert registry.kind_of("mean-colour:v1").kind == "mean-colour"
    assert registry.parse_backbone("mean-colour:v1@x").model == "mean-colour:v1@x"  # a kind's string is whole
    result = core.sweep(dataset=images, labels=labels, backbones=["mean-colour:v1", "brightness:v1"],
                        templates=["a photo of {}."], levels=[1, 2], out=tmp_path / "run", cache_dir=tmp_path / "c",
                        num_workers=0, bootstrap=50, ensemble_shots=[1], ensemble_splits=2)
    assert result.status == "completed"
    lv = result.levels.set_index(["backbone", "level"])
    assert lv.loc[("mean-colour:v1", 1), "top1"] == 1.0 and lv.loc[("brightness:v1", 2), "top1"] == 1.0
    # the scores are the cosines of mean colours, computed here independently
    pred = result.predictions.query("backbone == 'mean-colour:v1' and level == 1").set_index("image")
    for img, row in pred.iterrows():
        rgb = np.asarray(Image.open(images / img).convert("RGB"), np.float64).mean(axis=(0, 1))
        cos = {w: rgb @ np.array(c) / np.linalg.norm(rgb) for w, c in COLOURS.items()}
        assert row["predicted_class"] == max(cos, key=cos.get)
        assert row["score"] == pytest.approx(max(cos.values()), abs=1e-5)
    # both kinds join the multi-backbone analysis like any backbone
    assert set(result.backbones["backbone"]) >= {"mean-colour:v1", "brightness:v1"}
    meta = result.meta
    assert [b["kind"] for b in meta["backbones"]] == ["mean-colour", "brightness"]
    # a re-run is served by the cache: the kind is not asked for a single image or prompt
    requests = colour_kinds["mean-colour"].requests
    again = core.sweep(dataset=images, labels=labels, backbones=["mean-colour:v1"], templates=["a photo of {}."],
                       levels=[1, 2], out=tmp_path / "run2", cache_dir=tmp_path / "c", num_workers=0, bootstrap=50)
    assert colour_kinds["mean-colour"].requests == 0 and requests > 0
    pd.testing.assert_frame_equal(again.levels.drop(columns=["seconds"]),
                                  result.levels.query("backbone == 'mean-colour:v1'").reset_index(drop=True)
                                  .drop(columns=["seconds"]), check_dtype=False)
