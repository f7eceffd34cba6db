"""Neuromorphic (event) datasets: N-MNIST, DVS128 Gesture, CIFAR10-DVS, SHD and SSC.

- :mod:`~snnkit.data.neuromorphic.sources` — official files, URLs, published checksums;
- :mod:`~snnkit.data.neuromorphic.files` — fetching, checksum warnings, atomic unpacking;
- :mod:`~snnkit.data.neuromorphic.cameras`, :mod:`~snnkit.data.neuromorphic.gesture`,
  :mod:`~snnkit.data.neuromorphic.audio` — where each dataset's samples lie, checked at build;
- :mod:`~snnkit.data.neuromorphic.dataset` — the map-style dataset (frames, labels, events);
- :mod:`~snnkit.data.neuromorphic.factories` — the registered factories.
"""
