"""Model kinds: each turns images and candidate names into scores (or answers)."""
