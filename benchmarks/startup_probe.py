"""Start-up probe of ``digits bench``: how long a process takes to reach its first training step.

``python benchmarks/startup_probe.py all|training``, with the kernel cache chosen by
NUMBA_CACHE_DIR: imports, then (``all``, or a cache that is not warm) warm-up compiles or loads
every kernel, then one epoch of one step trains as ``digits train`` would. Prints one JSON line:
{"cached", "import_s", "kernels_s", "first_step_s", "started"} (``started``: the wall clock at
the end of the step, so that the parent can time the launch and the exit apart).
"""

import json
import sys
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

from tinygrad_digits import model as M  # noqa: E402
from tinygrad_digits import optimizers as O  # noqa: E402
from tinygrad_digits import train as T  # noqa: E402
from tinygrad_digits import warmup  # noqa: E402

t1 = time.perf_counter()
cached = warmup.kernels_cached()
if not cached or sys.argv[1] == "all":
    warmup.warm_up()
t2 = time.perf_counter()
spec = M.ModelSpec()
x, y = np.zeros((128, 784), np.float32), np.zeros(128, np.int64)
T.train(spec, M.init_params(spec, np.random.default_rng(0)), x, y, x[:0], y[:0],
        T.TrainConfig(epochs=1, batch_size=128), O.OptimizerConfig("adam"))
t3 = time.perf_counter()
print(json.dumps({"cached": cached, "import_s": t1 - t0, "kernels_s": t2 - t1, "first_step_s": t3 - t2,
                  "started": time.time()}), flush=True)
