"""Model kinds: one module per kind (open_clip, CLIP server, local VLM, OpenAI-compatible endpoint) on one small base (base.py), resolved by name through registry.py."""
