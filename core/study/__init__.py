"""Studies: datasets x backbones x one protocol, each dataset an ordinary run, summaries across datasets."""
