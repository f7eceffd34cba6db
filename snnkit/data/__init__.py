"""Datasets: readers of the official files, downloads, and the in-memory dataset they produce.

A new dataset is a factory ``factory(train, **params)`` registered in
:mod:`snnkit.plugins.catalogue`; see :mod:`~snnkit.data.images` for the image datasets.
"""
