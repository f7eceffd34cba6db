"""The engine: runs what assembly built — the training loop, evaluation, checkpoints, the run
folder, signals, progress, distributed training and CUDA graphs."""
