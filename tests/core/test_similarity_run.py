"""similarity.csv of a real two-backbone sweep, checked against embeddings computed here with open_clip."""

from pathlib import Path

import numpy as np
import pytest

import core
from tests.conftest import CLASSES
from tests.core.test_similarity import hsic_cka


def _embeddings(cfg: str, ck: str, files: list[Path]) -> np.ndarray:
    import open_clip
    import torch
    from PIL import Image

    open_clip.add_model_config(cfg)
    model, _, preprocess = open_clip.create_model_and_transforms(Path(cfg).stem, pretrained=None)
    open_clip.load_checkpoint(model, ck, weights_only=True)
    model.eval()
    with torch.no_grad():
        x = model.encode_image(torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files]))
    return torch.nn.functional.normalize(x, dim=-1).numpy()


def test_similarity_csv_of_a_two_backbone_run(two_backbone_run, tiny_model):
    run = core.load_run(two_backbone_run)
    sim = run.similarity
    assert sim is not None
    assert list(sim.columns) == ["backbone_a", "backbone_b", "scope", "class", "n_images", "cka", "knn_k",
                                 "knn_agreement"]
    overall = sim[sim.scope == "overall"]
    assert len(overall) == 1 and overall.iloc[0][["backbone_a", "backbone_b"]].tolist() == ["A", "B"]
    per = sim[sim.scope == "class"].set_index("class")
    assert set(per.index) == set(CLASSES) and (per.n_images == 4).all()
    root = two_backbone_run.parent
    files = sorted((root / "images").glob("*/*.png"))
    cfg, ck = tiny_model
    xa, xb = _embeddings(cfg, ck, files), _embeddings(cfg, str(root / "seed1.pt"), files)
    # the run stores embeddings at reduced precision: agree to a few decimals
    assert overall.iloc[0]["cka"] == pytest.approx(hsic_cka(xa.astype(float), xb.astype(float)), abs=2e-3)
    labels = np.array([f.parent.name for f in files])
    for c in CLASSES:
        m = labels == c
        assert per.loc[c, "cka"] == pytest.approx(hsic_cka(xa[m].astype(float), xb[m].astype(float)), abs=5e-3)
    k = int(overall.iloc[0]["knn_k"])
    assert k == 10
    assert 0 <= overall.iloc[0]["knn_agreement"] <= 1
    assert run.summary["similarity"][0]["cka"] == pytest.approx(overall.iloc[0]["cka"])
    assert "similarity.csv" in run.meta["files"]
