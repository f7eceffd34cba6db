"""Memory modes of training (``train.memory``, ``train.tbptt``): time segments recomputed in
backward, 1-bit spike storage, and the memory / time estimate behind ``snnkit plan``."""
