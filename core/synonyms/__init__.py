"""Where the extra category names come from: WordNet, embedding neighbours, known class lists.

A semantic-scaling experiment needs 8 or 16 ranked names per class, and nobody wants
to type them. This package turns a bare class list into a ranked labels file:

* :func:`wordnet_suggestions` reads synonyms (and, on request, hypernyms/hyponyms one
  step away) from a local WordNet database through nltk's ``WordNetCorpusReader``.
  Nothing is ever downloaded: :func:`find_wordnet` looks in the places a database can
  already be (an explicit path, ``$SEMSCALE_WORDNET``, nltk data folders, the Debian
  ``wordnet-base`` files) and otherwise uses the WordNet 3.0 noun lexicon bundled in
  ``resources/`` (:mod:`core.labels.lexicon`), which gives the same suggestions.
* :func:`neighbour_suggestions` ranks a vocabulary by cosine similarity to the class's
  canonical name under the selected backbone's own text encoder (same templates, same
  embedding cache as a sweep), so the suggestions are "near" in the model's own sense.
* :func:`load_class_list` reads class names from a preset (``imagenet``, ``cifar10``,
  ``cifar100``), a text/CSV/JSON file or a dataset folder.
* :func:`merge_suggestions` applies the hygiene rules (dedupe, cross-class collisions,
  user names first) and records every name's source in the labels file.

Everything here is free of Qt and of hidden I/O (the GUI's synonym editor calls it from
a worker thread); only :func:`find_wordnet` / :func:`open_wordnet` and the loaders read
files, and nothing writes any.

Modules, one concept each: :mod:`.suggestion` (a candidate name), :mod:`.wordnet_files`
(finding a database), :mod:`.wordnet` (reading and ranking it), :mod:`.neighbours`
(embedding neighbours), :mod:`.merge` (hygiene rules), :mod:`.suggest` (the one call the CLI
and the app make) and :mod:`.class_lists`. Everything is importable from here.
"""

from __future__ import annotations

from core.synonyms.suggestion import SUGGESTION_SOURCES, Suggestion, dedupe_suggestions
from core.labels.wordnet_files import (BUNDLED, LEXNAMES_TEXT, NO_WORDNET_HELP, SYSTEM_WORDNET_DIRS, WORDNET_ENV, WORDNET_FILES,
                            WORDNET_REQUIRED, WordNetLocation, WordNetUnavailable, bundled_wordnet,
                            find_wordnet)
from core.synonyms.wordnet import (DEFAULT_MAX_VOCABULARY, lookup_synsets, open_wordnet, wordnet_form, wordnet_suggestions,
                      wordnet_vocabulary)
from core.synonyms.neighbours import NeighbourIndex, build_neighbour_index, neighbour_suggestions
from core.synonyms.merge import DroppedName, merge_suggestions
from core.synonyms.suggest import SuggestReport, suggest_for_classes, suggest_for_labels
from core.synonyms.class_lists import (CIFAR100_CLASSES, CIFAR10_CLASSES, CLASS_LIST_PRESETS, imagenet_classes, load_class_list,
                          load_vocabulary)
from core.util.names import display_name as clean_name, name_key as normalise_name  # noqa: F401  (one definition, in core.util.names)
