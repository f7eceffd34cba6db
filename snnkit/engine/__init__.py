"""The engine: runs what assembly built.

``run`` (entry points: :func:`~snnkit.engine.run.run`, ``evaluate_checkpoint``) ->
``trainer`` (the epoch loop, the NaN policy) using ``batches`` (where batches come from: device
tensors or a DataLoader), ``steps`` / ``cuda_graphs`` (how one batch's
gradients are computed), ``state`` (position and checkpoint dict), ``checkpoint`` (atomic,
safe files), ``evaluation``, ``tb_logger``, ``rundir``, ``progress``, ``signals`` and
``distributed``; ``blame`` names the component behind an exception; ``restore`` rebuilds a
trained Experiment from a checkpoint.
"""
