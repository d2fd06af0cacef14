"""semscale engine: semantic-category scaling experiments with CLIP-style models.

Pure Python + torch + open_clip + pandas. Never imports Qt: the desktop app drives this
package through a worker thread, the CLI drives it directly.
"""

__version__ = "0.1.0"
