"""A Ray instance that ``semscale embed --engine ray`` starts itself listens on loopback only."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.data")

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import ipaddress, json, sys
import psutil
from core.util.config import BackboneSpec
from core.embedding.distributed import EmbedConfig, run_embed
from core.util.events import Progress

cfg, ck, images, out = sys.argv[1:]
seen = set()

def listeners(event):
    # while Ray encodes: every listening socket of this process and everything it started
    if isinstance(event, Progress):
        me = psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            try:
                for c in p.net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN:
                        seen.add((p.name(), c.laddr.ip, c.laddr.port))
            except psutil.Error:
                pass

run_embed(EmbedConfig(dataset=images, out=out, backbone=BackboneSpec(cfg, checkpoint=ck, device="cpu"), engine="ray",
                      num_cpus=2, batch_size=8, shard_size=8), emit=listeners)
print(json.dumps(sorted(seen)))
"""


@pytest.mark.slow
def test_local_ray_listens_on_loopback_only(tiny_model, image_folder, tmp_path):
    """Attack 5: GCS, raylets, workers and the driver listened on *:PORT, open to the network."""
    import ipaddress

    cfg, ck = tiny_model
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    p = subprocess.run([sys.executable, str(script), cfg, ck, str(image_folder), str(tmp_path / "store")], cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=420)
    assert p.returncode == 0, p.stderr[-3000:]
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    names = {name for name, _, _ in seen}
    assert {"gcs_server", "raylet"} <= names, seen  # the probe saw Ray's own servers
    for name, ip, port in seen:
        addr = ipaddress.ip_address(ip)
        addr = addr.ipv4_mapped or addr if isinstance(addr, ipaddress.IPv6Address) else addr
        assert addr.is_loopback, f"{name} listens on {ip}:{port}"
