#!/usr/bin/env bash
# Build clip-as-service's server (clip-server 0.8.3) in its own virtual environment, once.
#
# Its pins (open_clip_torch 2.8, protobuf 3.20, docarray 0.21) conflict with semscale's own
# stack, and pip's resolver backtracks for tens of minutes when left to itself; the versions
# below were measured to install and run together (HTTP and gRPC gateways, CPU or CUDA).
# A stamp file records a finished build; later calls reuse the environment and return at once.
#
# Usage: build_scripts/clip_server_env.sh [ENV_DIR]   (default: benchmarks/.envs/clip-server-0.8.3)
# Prints the environment's python on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR="${1:-${SEMSCALE_CLIP_SERVER_ENV:-benchmarks/.envs/clip-server-0.8.3}}"
PYTHON="${PYTHON:-python3}"
STAMP="$ENV_DIR/.semscale-clip-server-env"
# bump when the pins change, so an environment built from older pins is rebuilt
PINS_VERSION=1

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS_VERSION" ]; then
  echo "$ENV_DIR/bin/python"
  exit 0
fi

rm -rf "$ENV_DIR"
mkdir -p "$(dirname "$ENV_DIR")"
"$PYTHON" -m venv "$ENV_DIR"
PIP=("$ENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check)
CONSTRAINTS="$ENV_DIR/constraints.txt"
cat > "$CONSTRAINTS" <<'PINS'
torch==2.14.1
torchvision==0.29.1
jina==3.34.0
docarray==0.21.0
protobuf==3.20.3
grpcio==1.68.0
grpcio-reflection==1.48.2
grpcio-health-checking==1.48.2
opentelemetry-api==1.20.0
opentelemetry-sdk==1.20.0
opentelemetry-proto==1.20.0
opentelemetry-exporter-otlp==1.20.0
opentelemetry-exporter-otlp-proto-common==1.20.0
opentelemetry-exporter-otlp-proto-grpc==1.20.0
opentelemetry-exporter-otlp-proto-http==1.20.0
opentelemetry-exporter-prometheus==0.41b0
opentelemetry-instrumentation==0.41b0
opentelemetry-instrumentation-aiohttp-client==0.41b0
opentelemetry-instrumentation-asgi==0.41b0
opentelemetry-instrumentation-fastapi==0.41b0
opentelemetry-instrumentation-grpc==0.41b0
opentelemetry-semantic-conventions==0.41b0
opentelemetry-util-http==0.41b0
uvicorn==0.23.1
PINS
start=$(date +%s)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" -c "$CONSTRAINTS" torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" -c "$CONSTRAINTS" clip-server==0.8.3
# clip-server imports pkg_resources; jina's HTTP gateway needs pydantic 1 and a FastAPI of its time
"${PIP[@]}" -c "$CONSTRAINTS" "setuptools<81" "pydantic<2" "fastapi<0.100"
# its gRPC client too (the tests' readiness probe over gRPC); its own pins would undo the server's
"${PIP[@]}" --no-deps clip-client==0.8.3
"$ENV_DIR/bin/python" -W ignore -c "
import importlib.metadata as md, clip_server.executors.clip_torch, clip_client, jina, torch, torchvision
print('clip-server env:', ', '.join(f'{p} {md.version(p)}' for p in
      ('clip-server', 'clip-client', 'jina', 'docarray', 'open_clip_torch', 'torch', 'torchvision', 'protobuf', 'pydantic', 'fastapi')))
" >&2
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$PINS_VERSION" > "$STAMP"
echo "$ENV_DIR/bin/python"
