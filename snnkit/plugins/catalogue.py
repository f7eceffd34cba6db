"""snnkit's own components, registered through the public hooks exactly like any plugin.

This module is the catalogue: every built-in component is listed here, on one screen.
"""

from __future__ import annotations

from snnkit.components import (
    blocks,
    delays,
    encoders,
    layers,
    losses,
    models,
    neurons,
    optim,
    penalties,
    recurrent,
    surrogates,
    zoo,
)
from snnkit.components.transforms import events as event_transforms
from snnkit.components.transforms import images as image_transforms
from snnkit.data import images as data
from snnkit.data.neuromorphic import factories as events
from snnkit.hookspecs import Register, hookimpl


@hookimpl
def register_neurons(register: Register) -> None:
    register("if", neurons.IF)
    register("lif", neurons.LIF)
    register("plif", neurons.PLIF)
    register("qif", neurons.QIF)
    register("eif", neurons.EIF)
    register("izhikevich", neurons.Izhikevich)
    register("alif", neurons.ALIF)
    register("cuba_lif", neurons.CubaLIF)
    register("li", neurons.LI)


@hookimpl
def register_surrogates(register: Register) -> None:
    register("sigmoid", surrogates.Sigmoid)
    register("atan", surrogates.ATan)
    register("piecewise_quadratic", surrogates.PiecewiseQuadratic)
    register("piecewise_exp", surrogates.PiecewiseExp)
    register("soft_sign", surrogates.SoftSign)
    register("erf", surrogates.Erf)
    register("super_spike", surrogates.SuperSpike)
    register("fast_sigmoid", surrogates.FastSigmoid)
    register("piecewise_leaky_relu", surrogates.PiecewiseLeakyReLU)
    register("rect", surrogates.Rect)
    register("q_pseudo_spike", surrogates.QPseudoSpike)
    register("straight_through", surrogates.StraightThrough)


@hookimpl
def register_encoders(register: Register) -> None:
    register("poisson", encoders.PoissonEncoder)
    register("latency", encoders.LatencyEncoder)
    register("periodic", encoders.PeriodicEncoder)
    register("weighted_phase", encoders.WeightedPhaseEncoder)
    register("direct", encoders.DirectEncoder)
    register("delta", encoders.DeltaEncoder)
    register("sequence", encoders.SequenceEncoder)


@hookimpl
def register_losses(register: Register) -> None:
    register("mse_rate", losses.MSERate)
    register("ce_rate", losses.CERate)
    register("mse_count", losses.MSECount)
    register("ce_count", losses.CECount)
    register("mse_membrane", losses.MSEMembrane)
    register("tet", losses.TETLoss)
    register("rate_penalty", penalties.RatePenalty)


@hookimpl
def register_layers(register: Register) -> None:
    register("linear", layers.Linear)
    register("conv1d", layers.Conv1d)
    register("conv2d", layers.Conv2d)
    register("batchnorm1d", layers.BatchNorm1d)
    register("batchnorm2d", layers.BatchNorm2d)
    register("maxpool2d", layers.MaxPool2d)
    register("avgpool2d", layers.AvgPool2d)
    register("adaptive_avgpool2d", layers.AdaptiveAvgPool2d)
    register("flatten", layers.Flatten)
    register("dropout", layers.Dropout)
    register("dropout2d", layers.Dropout2d)
    register("identity", layers.Identity)
    register("random_shift", layers.RandomShift)
    register("recurrent", recurrent.Recurrent)
    register("residual", blocks.Residual)
    register("repeat", blocks.Repeat)
    register("branches", blocks.Branches)
    register("delay", delays.Delay)
    register("dcls_delay", delays.DCLSDelay)


@hookimpl
def register_models(register: Register) -> None:
    register("sequential", models.Sequential)
    register("mlp", models.MLP)
    register("rsnn", models.RSNN)
    register("sew_resnet", zoo.SEWResNet)
    register("spiking_vgg", zoo.SpikingVGG)
    register("spikformer", zoo.Spikformer)


@hookimpl
def register_optimizers(register: Register) -> None:
    register("adam", optim.adam)
    register("adamw", optim.adamw)
    register("sgd", optim.sgd)
    register("rmsprop", optim.rmsprop)


@hookimpl
def register_schedulers(register: Register) -> None:
    register("cosine", optim.cosine)
    register("step", optim.step_lr)


@hookimpl
def register_datasets(register: Register) -> None:
    register("mnist", data.mnist)
    register("fashion_mnist", data.fashion_mnist)
    register("kmnist", data.kmnist)
    register("cifar10", data.cifar10)
    register("synthetic", data.synthetic)
    register("nmnist", events.nmnist)
    register("dvs_gesture", events.dvs_gesture)
    register("cifar10_dvs", events.cifar10_dvs)
    register("shd", events.shd)
    register("ssc", events.ssc)


@hookimpl
def register_transforms(register: Register) -> None:
    register("random_crop", image_transforms.random_crop)
    register("horizontal_flip", image_transforms.horizontal_flip)
    register("vertical_flip", image_transforms.vertical_flip)
    register("normalize", image_transforms.normalize)
    register("auto_augment", image_transforms.auto_augment)
    register("random_erasing", image_transforms.random_erasing)
    register("cutout", image_transforms.cutout)
    register("denoise", event_transforms.Denoise)
    register("drop_events", event_transforms.DropEvents)
    register("downsample", event_transforms.Downsample)
    register("flip_events", event_transforms.FlipEvents)
    register("time_jitter", event_transforms.TimeJitter)
    register("crop_events", event_transforms.CropEvents)
