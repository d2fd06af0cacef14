"""Image and text embeddings computed once per backbone through the on-disk cache; embedding stores, work shards and Ray."""
