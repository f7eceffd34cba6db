"""Activation memory counted exactly: the bytes autograd saves for the backward pass.

:class:`SavedTensorMeter` installs ``torch.autograd.graph.saved_tensors_hooks``: every tensor
an operation saves for backward passes through its pack hook, which wraps it in a token; the
token lives exactly as long as the graph keeps the saved tensor. A storage is counted once,
however many operations save (views of) it, from the first token to the last token's release;
storages of parameters are not activations and are left out. :attr:`peak` is the largest
number of live saved bytes seen (forward and backward, recomputed segments included),
:attr:`saved` the total packed during the pass, :attr:`by_tag` that total split by the
value :attr:`tag` held when each storage was first saved (e.g. the layer running).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


class _Token:
    __slots__ = ("__weakref__", "tensor")

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


class SavedTensorMeter:
    """``with SavedTensorMeter(model.parameters()) as m: loss(f(x)).backward()`` -> ``m.peak``."""

    def __init__(self, exclude: Iterable[Tensor] = ()) -> None:
        self.exclude = {int(p.untyped_storage().data_ptr()) for p in exclude}
        self.live: dict[int, list[int]] = {}  # storage ptr -> [tokens alive, bytes]
        self.current = 0
        self.peak = 0
        self.saved = 0
        self.tag = ""
        self.by_tag: dict[str, int] = {}
        self._hooks: Any = None

    def _pack(self, tensor: Tensor) -> _Token:
        token = _Token(tensor)
        storage = tensor.untyped_storage()
        ptr = int(storage.data_ptr())
        if ptr in self.exclude or storage.nbytes() == 0:
            return token
        entry = self.live.get(ptr)
        if entry is None:
            entry = self.live[ptr] = [0, int(storage.nbytes())]
            self.current += entry[1]
            self.saved += entry[1]
            self.by_tag[self.tag] = self.by_tag.get(self.tag, 0) + entry[1]
            self.peak = max(self.peak, self.current)
        entry[0] += 1
        weakref.finalize(token, self._release, ptr)
        return token

    def _release(self, ptr: int) -> None:
        entry = self.live.get(ptr)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.live[ptr]

    @staticmethod
    def _unpack(token: _Token) -> Tensor:
        return token.tensor

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)
