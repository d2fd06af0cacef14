"""Bottom layer: errors, events, atomic files, memory, the one name normaliser, the user-table reader, configuration records and versions. Imports nothing else from core."""
