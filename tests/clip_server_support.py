"""Start a real clip-as-service server (clip-server 0.8.3) on 127.0.0.1 for tests and benchmarks.

The server runs from its own virtual environment (``make clip-server-env``; its pins conflict
with semscale's) and holds local random-initialised weights, so nothing is downloaded:

* the weights are an open_clip state dict made here (semscale's environment) and saved once;
* clip-as-service only loads models listed in ``_OPENCLIP_MODELS`` (name -> (file, md5)) from
  ``~/.cache/clip``; a module in the Flow's ``py_modules`` adds our name with an empty MD5 (which
  accepts any file), and the server runs with its own HOME whose ``.cache/clip`` links to the
  weights;
* the Flow binds the gateway and the executor to 127.0.0.1 (Jina binds every interface by
  default) on free ports;
* :meth:`ClipServer.start` returns once a REAL embedding comes back (the gateway answers with a
  communication error while the executor is still loading; a cold first request takes ~20 s);
* :meth:`ClipServer.stop` ends the whole process group (gateway + executor).
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
ENV_DIR = Path(os.environ.get("SEMSCALE_CLIP_SERVER_ENV", ROOT / "benchmarks" / ".envs" / "clip-server-0.8.3"))
STAMP = ".semscale-clip-server-env"
MODEL = "ViT-B-32"
SERVER_NAME = "ViT-B-32::semscale-local"  # the name the Flow asks for
WEIGHTS_FILE = "semscale-local.pt"  # its file under the server's ~/.cache/clip
WEIGHTS_CACHE = ROOT / ".cache" / "clip-server-test"

REGISTER_MODULE = f'''"""Lets clip-as-service load local weights: our name, an empty MD5 (accept the file as it is)."""
from clip_server.model import pretrained_models

pretrained_models._OPENCLIP_MODELS[{SERVER_NAME!r}] = ({WEIGHTS_FILE!r}, "")
'''

FLOW = """jtype: Flow
version: '1'
with:
  protocol: {protocol}
  port: {port}
  host: 127.0.0.1
executors:
  - name: clip_t
    host: 127.0.0.1
    port: {executor_port}
    uses:
      jtype: CLIPEncoder
      with:
        name: {name}
        device: cpu
        minibatch_size: 32
      metas:
        py_modules:
          - {register}
          - clip_server.executors.clip_torch
"""


class ServerUnavailable(RuntimeError):
    """The server environment is missing or the server did not start (the message says why)."""


def server_python(env_dir: Path = ENV_DIR) -> Optional[Path]:
    """The server environment's python when ``make clip-server-env`` finished building it, else None."""
    py = env_dir / "bin" / "python"
    return py if (env_dir / STAMP).exists() and py.exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_weights(out_dir: Path = WEIGHTS_CACHE, seed: int = 0) -> Path:
    """A random-initialised ViT-B-32 (open_clip) state dict, fp16 (302 MB), made once and reused."""
    path = Path(out_dir) / f"{MODEL}-random-seed{seed}.pt"
    if not path.exists():
        import open_clip
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        m = open_clip.create_model(MODEL)
        tmp = path.with_suffix(".part")
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in m.state_dict().items()}, tmp)
        tmp.replace(path)
    return path


def _png_data_uri(size=(64, 48)) -> str:
    import numpy as np
    from PIL import Image

    arr = (np.arange(size[0] * size[1] * 3) % 251).astype(np.uint8).reshape(size[1], size[0], 3)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class ClipServer:
    """One clip-as-service Flow (gateway + one CPU executor) in its own process group."""

    def __init__(self, weights: Path, workdir: Path, *, protocol: str = "http", port: Optional[int] = None,
                 python: Optional[Path] = None, grpc: bool = False):
        """``protocol`` is the main gateway; ``grpc=True`` adds a gRPC gateway beside an HTTP one (one Flow
        serves both, on ``grpc_port``)."""
        self.python = python or server_python()
        if self.python is None:
            raise ServerUnavailable(f"clip-as-service's environment is not built ({ENV_DIR}); run "
                                    "`make clip-server-env` (about 5 minutes, 6 GB)")
        self.weights = Path(weights).resolve()
        self.workdir = Path(workdir)
        self.protocol = protocol
        self.port = port or free_port()
        self.grpc_port = free_port() if grpc and protocol == "http" else None
        self.proc: Optional[subprocess.Popen] = None
        self.first_request_s: Optional[float] = None  # the first successful embedding's wait
        self.ready_s: Optional[float] = None  # launch -> first real embedding

    @property
    def url(self) -> str:
        return f"{self.protocol}://127.0.0.1:{self.port}"

    @property
    def spec(self) -> str:
        return f"clip-server:{self.url}"

    @property
    def grpc_spec(self) -> Optional[str]:
        if self.protocol == "grpc":
            return self.spec
        return f"clip-server:grpc://127.0.0.1:{self.grpc_port}" if self.grpc_port else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _write_files(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        home = self.workdir / "home"
        cache = home / ".cache" / "clip"
        cache.mkdir(parents=True, exist_ok=True)
        link = cache / WEIGHTS_FILE
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(self.weights)
        (self.workdir / "semscale_local_weights.py").write_text(REGISTER_MODULE)
        flow = self.workdir / "flow.yml"
        protocol, port = self.protocol, str(self.port)
        if self.grpc_port:
            protocol, port = f"[{self.protocol}, grpc]", f"[{self.port}, {self.grpc_port}]"
        flow.write_text(FLOW.format(protocol=protocol, port=port, executor_port=free_port(),
                                    name=SERVER_NAME, register=str(self.workdir / "semscale_local_weights.py")))
        return flow

    def start(self, timeout: float = 600.0) -> "ClipServer":
        flow = self._write_files()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(HOME=str(self.workdir / "home"), JINA_LOG_LEVEL="INFO", JINA_OPTOUT_TELEMETRY="1",
                   NO_COLOR="1", PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1",
                   OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"))
        log = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([str(self.python), "-m", "clip_server", str(flow)], cwd=self.workdir,
                                     stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        try:
            self.wait_ready(timeout, t0)
        except BaseException:
            self.stop()
            raise
        return self

    def _probe(self, timeout: float) -> bool:
        """One real request; True when it came back with an embedding."""
        if self.protocol != "http":
            return self._probe_grpc(timeout)
        import requests

        body = {"data": [{"text": "a photo of a cat."}, {"uri": _png_data_uri()}], "execEndpoint": "/"}
        try:
            r = requests.post(f"{self.url}/post", json=body, timeout=timeout)
            data = r.json().get("data") if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return False
        return bool(data) and all(d.get("embedding") is not None for d in data)

    def _probe_grpc(self, timeout: float) -> bool:
        code = ("import sys; from clip_client import Client; "
                f"e = Client('grpc://127.0.0.1:{self.port}').encode(['a photo of a cat.']); "
                "sys.exit(0 if e.shape[0] == 1 else 1)")
        try:
            return subprocess.run([str(self.python), "-c", code], capture_output=True, timeout=timeout).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def wait_ready(self, timeout: float, t0: Optional[float] = None) -> None:
        t0 = t0 if t0 is not None else time.perf_counter()
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerUnavailable(f"clip-as-service exited with status {self.proc.returncode}:\n{self.log_tail()}")
            if _port_open(self.port):
                t1 = time.perf_counter()
                if self._probe(timeout=max(5.0, deadline - t1)):
                    self.first_request_s = time.perf_counter() - t1
                    self.ready_s = time.perf_counter() - t0
                    return
            time.sleep(1.0)
        raise ServerUnavailable(f"clip-as-service did not answer with an embedding within {timeout:.0f} s:\n"
                                f"{self.log_tail()}")

    def post_count(self) -> int:
        """Successful ``POST /post`` requests the HTTP gateway has logged (its access log): counted on the server."""
        try:
            return self.log_path.read_text(errors="replace").count('"POST /post HTTP/1.1" 200')
        except OSError:
            return 0

    def restart(self, timeout: float = 600.0) -> "ClipServer":
        """Start again on the same port(s), after :meth:`kill` or :meth:`stop`."""
        self.stop()
        self.proc = None
        return self.start(timeout)

    def kill(self) -> None:
        """End the server abruptly (SIGKILL to its process group), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                self.kill()
        try:  # executors the gateway started in the same group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> "ClipServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main(argv: Optional[list[str]] = None) -> int:
    """Start a server with random ViT-B-32 weights and keep it running until Ctrl-C."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("--weights", type=Path, default=None, help="an open_clip ViT-B-32 state dict (default: random)")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".cache" / "clip-server-run")
    args = ap.parse_args(argv)
    weights = args.weights or random_weights()
    try:
        server = ClipServer(weights, args.workdir, protocol=args.protocol, port=args.port).start()
    except ServerUnavailable as e:
        print(e, file=sys.stderr)
        return 2
    print(json.dumps({"spec": server.spec, "weights": str(weights), "ready_s": round(server.ready_s, 1),
                      "first_request_s": round(server.first_request_s, 1), "log": str(server.log_path)}), flush=True)
    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # `kill PID` stops the server too, not only Ctrl-C
    try:
        while server.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
