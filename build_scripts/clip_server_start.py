"""Start clip-as-service on 127.0.0.1 with local ViT-B-32 weights (random by default) until Ctrl-C.

Needs the server environment (`make clip-server-env`). Prints one JSON line with the backbone
spec to use (`--model clip-server:http://127.0.0.1:PORT`), the weights file (use it with
`--model ViT-B-32 --checkpoint FILE` for the same model in-process) and the start-up times.

    python build_scripts/clip_server_start.py [--port 51000] [--protocol http|grpc] [--weights FILE]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.clip_server_support import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
