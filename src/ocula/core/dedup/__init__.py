"""Image deduplication: perceptual hashes of the pixels (:mod:`.phash`), exact
near-duplicate search by Hamming distance over them (:mod:`.search`) and the analysis
that turns the neighbours into kept items and groups (:mod:`.analysis`, registered as
``"dedup"`` with the other analyses in :mod:`ocula.core.evaluation.analyses`).

Nothing here reads a database: the service (:mod:`ocula.core.services.dedup`) gives
the hashes and the item ids behind them.
"""

from ocula.core.dedup.analysis import DedupConfig, DedupResults, deduplicate
from ocula.core.dedup.phash import hash_bits, hash_from_bits, phash_file, phash_image
from ocula.core.dedup.search import near_pairs

__all__ = ["DedupConfig", "DedupResults", "deduplicate", "hash_bits", "hash_from_bits",
           "near_pairs", "phash_file", "phash_image"]
