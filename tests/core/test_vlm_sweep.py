"""VLMs in a sweep: an OpenAI-compatible server that answers by colour (a real local HTTP server),
matched per level, next to a CLIP backbone; the likelihood kind through the level scorer."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("openai")

from core.cli import main as cli_main  # noqa: E402
from tests.conftest import CLASSES, write_image_folder  # noqa: E402

# what the server says for each colour: a level-2 name of red, a level-1 name of green, a name no
# class lists for blue, and two classes at once for yellow
SAYS = {"red square": "I see a Crimson Blocks.", "green circle": "green circle", "blue triangle": "a notice board",
        "yellow bar": "A. lime disc or a red square"}
COLOURS = {"red square": (220, 30, 30), "green circle": (30, 200, 40), "blue triangle": (30, 40, 220),
           "yellow bar": (230, 220, 30)}
KEY = "sk-sweep-test-secret-4242"


def colour_class(rgb) -> str:
    return min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], rgb)))


class ColourEndpoint(BaseHTTPRequestHandler):
    prompts: list = []
    auth: set = set()

    def log_message(self, *args):
        pass

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._json({"object": "list", "data": [{"id": "colour-vlm", "object": "model", "created": 1, "owned_by": "t"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).auth.add(self.headers.get("Authorization"))
        parts = body["messages"][0]["content"]
        prompt = next(p["text"] for p in parts if p["type"] == "text")
        type(self).prompts.append(prompt)
        uri = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")
        cls = colour_class(np.asarray(im, dtype=float).reshape(-1, 3).mean(axis=0))
        text = SAYS[cls]
        if "Choose one from" in prompt:  # closed world: the first listed name of the colour's class, else "none"
            listed = re.search(r'Choose one from "(.*)"', prompt).group(1).split(", ")
            text = next((n for n in listed if n in CLASSES[cls]), "none of these")
        self._json({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def colour_endpoint():
    ColourEndpoint.prompts, ColourEndpoint.auth = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), ColourEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sweep_inputs(tmp_path, tiny_model):
    images = write_image_folder(tmp_path / "images", per_class=2)
    labels = tmp_path / "labels.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{n}\n" for c, ns in CLASSES.items() for n in ns))
    return images, labels, tiny_model


def test_open_answers_matched_per_level_next_to_clip(colour_endpoint, sweep_inputs, tmp_path, monkeypatch, capsys):
    images, labels, (cfg, ck) = sweep_inputs
    monkeypatch.setenv("VLM_KEY", KEY)
    out = tmp_path / "run"
    rc = cli_main(["sweep", "--dataset", str(images), "--labels", str(labels), "--model", f"{cfg}={ck}",
                   "--model", f"openai:colour-vlm@{colour_endpoint}", "--api-key-env", "VLM_KEY",
                   "--max-concurrency", "2", "--levels", "1,2", "--out", str(out), "--cache-dir", str(tmp_path / "c"),
                   "--bootstrap", "20", "--ensemble-shots", "", "--quiet"])
    assert rc == 0
    assert ColourEndpoint.auth == {f"Bearer {KEY}"}
    assert len(ColourEndpoint.prompts) == 8  # one answer per image serves both levels

    ans = pd.read_csv(out / "answers.csv", keep_default_na=False)
    assert list(ans.columns) == ["backbone", "image", "level", "answer", "matched_names", "matched_classes", "credit",
                                 "true_class"]
    assert len(ans) == 16 and set(ans["backbone"]) == {"openai:colour-vlm"}
    for _, r in ans.iterrows():
        assert r["answer"] == SAYS[r["true_class"]]  # kept exactly
    want = {  # (true class, level) -> (matched classes, credit), worked by hand
        ("red square", 1): ("", 0.0), ("red square", 2): ("red square", 1.0),
        ("green circle", 1): ("green circle", 1.0), ("green circle", 2): ("green circle", 1.0),
        ("blue triangle", 1): ("", 0.0), ("blue triangle", 2): ("", 0.0),
        ("yellow bar", 1): ("red square", 0.0), ("yellow bar", 2): ("red square|green circle", 0.0),
    }
    for _, r in ans.iterrows():
        assert (r["matched_classes"], r["credit"]) == want[(r["true_class"], r["level"])]

    levels = pd.read_csv(out / "levels.csv")
    vlm = levels[levels["backbone"] == "openai:colour-vlm"].set_index("level")
    assert vlm.loc[1, "top1"] == pytest.approx(2 / 8) and vlm.loc[2, "top1"] == pytest.approx(4 / 8)
    bb = pd.read_csv(out / "backbones.csv")
    assert set(bb["kind"]) == {"clip", "openai"}
    run = json.loads((out / "run.json").read_text())
    s = run["summary"]["backbones"]["openai:colour-vlm"]
    assert s["unmatched_share"] == {"1": 0.5, "2": 0.25} and s["mode"] == "open"
    for f in out.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f

    capsys.readouterr()
    assert cli_main(["answers", str(out)]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert printed.to_dict("records") == [{"backbone": "openai:colour-vlm", "true_class": "blue triangle",
                                           "answer": "a notice board", "count": 2, "share": 1.0}]

    # a re-run asks nothing: every answer comes from the cache
    rc = cli_main(["sweep", "--dataset", str(images), "--labels", str(labels),
                   "--model", f"openai:colour-vlm@{colour_endpoint}", "--levels", "1,2", "--out", str(tmp_path / "again"),
                   "--cache-dir", str(tmp_path / "c"), "--bootstrap", "20", "--quiet"])
    assert rc == 0 and len(ColourEndpoint.prompts) == 8


def test_closed_world_asks_once_per_level_with_the_level_categories(colour_endpoint, sweep_inputs, tmp_path):
    images, labels, _ = sweep_inputs
    out = tmp_path / "closed"
    rc = cli_main(["sweep", "--dataset", str(images), "--labels", str(labels), "--model",
                   f"openai:colour-vlm@{colour_endpoint}", "--vlm-mode", "closed", "--levels", "1,2", "--out", str(out),
                   "--cache-dir", str(tmp_path / "c"), "--bootstrap", "20", "--quiet"])
    assert rc == 0
    assert len(ColourEndpoint.prompts) == 16  # 8 images x 2 levels
    for p in ColourEndpoint.prompts:
        listed = re.search(r'Choose one from "(.*)"', p).group(1).split(", ")
        assert len(listed) == len(set(listed)) and sorted(listed) in (
            sorted(ns[0] for ns in CLASSES.values()), sorted({n for ns in CLASSES.values() for n in ns[:2]}))
    ans = pd.read_csv(out / "answers.csv", keep_default_na=False)
    assert (ans["credit"] == 1.0).all()  # the server always picks its class's listed name
    assert json.loads((out / "run.json").read_text())["summary"]["backbones"]["openai:colour-vlm[closed]"]["mode"] == "closed"


def test_likelihood_sweep_predicts_the_best_scored_name(sweep_inputs, tmp_path_factory, tmp_path):
    from core.data.imagefolder import load_image_folder
    from core.demo.tiny_vlm import write_tiny_vlm
    from core.models.vlm import LocalVLM

    images, labels, _ = sweep_inputs
    folder = write_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "llava")
    out = tmp_path / "lik"
    rc = cli_main(["sweep", "--dataset", str(images), "--labels", str(labels), "--model", f"vlm:{folder}",
                   "--vlm-mode", "likelihood", "--levels", "1,2", "--out", str(out), "--cache-dir", str(tmp_path / "c"),
                   "--bootstrap", "20", "--quiet"])
    assert rc == 0
    ds = load_image_folder(images)
    names = sorted({n for ns in CLASSES.values() for n in ns})
    m = LocalVLM(str(folder), mode="likelihood").score_matrix(ds, list(range(len(ds))), names)
    pred = pd.read_csv(out / "predictions.csv")
    for k in (1, 2):
        level_names = sorted({n for ns in CLASSES.values() for n in ns[:k]})
        cols = [names.index(n) for n in level_names]
        for i, r in enumerate(ds.records):
            row = pred[(pred["level"] == k) & (pred["image"] == r.id)].iloc[0]
            assert row["predicted_label"] == level_names[int(np.argmax(m[i, cols]))]


def test_closed_world_prompt_over_the_context_is_refused_before_the_run(sweep_inputs, tmp_path_factory, tmp_path,
                                                                      capsys):
    from core.demo.tiny_vlm import write_tiny_vlm

    images, _, _ = sweep_inputs
    folder = write_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "llava")
    labels = tmp_path / "many.csv"
    labels.write_text("class,synonym\n" + "".join(f"{c},{c} variant {i}\n" for c in CLASSES for i in range(40)))
    out = tmp_path / "refused"
    rc = cli_main(["sweep", "--dataset", str(images), "--labels", str(labels), "--model", f"vlm:{folder}",
                   "--vlm-mode", "closed", "--levels", "1,40", "--out", str(out), "--cache-dir", str(tmp_path / "c"),
                   "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert re.search(r"level 40 \(160 names\) takes \d+ tokens \(\+64 for the answer\), more than the model's context "
                     r"of 512 tokens", err), err
    assert not (out / "run.json").exists()
