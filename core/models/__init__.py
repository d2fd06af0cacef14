"""Model kinds: what turns images and candidate names into scores or answers."""
