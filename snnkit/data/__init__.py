"""Datasets: readers of the official files, downloads, and the datasets they produce.

A new dataset is a factory ``factory(train, **params)`` registered in
:mod:`snnkit.plugins.catalogue`, returning an in-memory dataset (:mod:`~snnkit.data.images`)
or a map-style one read sample by sample (:mod:`~snnkit.data.neuromorphic`: event files,
:mod:`~snnkit.data.frames` and the :mod:`~snnkit.data.frame_cache`);
:mod:`~snnkit.data.transformed` applies a recipe's per-sample transforms.
"""
