"""Data transforms a recipe lists under ``dataset.transforms.{train,test}`` (component kind
``transform``, hook ``register_transforms``).

Two stages, applied per sample in this order: **event** transforms
(:mod:`~snnkit.components.transforms.events`, snnkit's own pure functions on the numpy
structured event arrays of a neuromorphic dataset, before framing) and **tensor** transforms
(:mod:`~snnkit.components.transforms.images`, torchvision v2 transforms on the sample tensor:
an image ``[C, H, W]`` or frames ``[T, C, H, W]``). The contract is in
:mod:`~snnkit.components.transforms.base`.
"""
