"""One sweep: the level plan, scoring, the per-backbone stage and the multi-backbone analysis."""
