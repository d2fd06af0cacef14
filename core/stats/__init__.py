"""Statistics computed from scores and answers."""
