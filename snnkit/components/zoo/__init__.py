"""Registered architectures from the SNN literature, each a model factory taking ``build``.

- :class:`SEWResNet` (Fang et al. 2021), :class:`SpikingVGG` (Sengupta et al. 2019),
  :class:`Spikformer` (Zhou et al. 2023). Their neurons are neuron specs (any registered
  neuron), built through ``build`` like a recipe's layers, so they run in both step modes.
"""

from snnkit.components.zoo.sew_resnet import SEWResNet
from snnkit.components.zoo.spikformer import Spikformer
from snnkit.components.zoo.vgg import SpikingVGG

__all__ = ["SEWResNet", "Spikformer", "SpikingVGG"]
