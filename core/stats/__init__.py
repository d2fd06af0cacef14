"""Numbers from scores: metrics and intervals, paired tests, ensembles, class frequency, flips, external predictions, answer matching."""
