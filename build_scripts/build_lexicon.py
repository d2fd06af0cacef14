"""Rebuild the bundled WordNet noun lexicon (resources/wordnet/) from a WordNet 3.0 folder.

    python build_scripts/build_lexicon.py                 # from /usr/share/wordnet (apt-get install wordnet-base)
    python build_scripts/build_lexicon.py --wordnet DIR   # any WordNet 3.0 dict/ folder

The output is the same bytes for the same input files (fixed zip timestamps and order).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.labels.lexicon import LEXICON_RELATIVE, LICENSE_RELATIVE, build_lexicon, read_member  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"), help="WordNet 3.0 database folder")
    ap.add_argument("--out", type=Path, default=ROOT / "resources", help="resources folder to write into")
    args = ap.parse_args(argv)
    out = build_lexicon(args.wordnet, args.out / LEXICON_RELATIVE)
    (args.out / LICENSE_RELATIVE).write_bytes(read_member("LICENSE", out))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
