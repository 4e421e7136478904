"""Package-data folder for the paper's published split files (``fma_*_set.json``, ``mtg_*_set.json``).

It ships empty: the files are on the deezer/real-cloned-singer-id releases page (``splits.zip``), which this
repository does not copy. Files placed here are found when ``--splits`` is not given (after DATA_ROOT).
"""
