"""Compiled implementations behind :mod:`geomgen.ops` (numba on CPU, torch/Triton on GPU).

Files mirror ``geomgen/ops`` by name (``knn_numba.py`` serves ``ops/knn.py``).  Kernels
never validate: the public op in ``geomgen.ops`` checks every argument first, so
bad indices never reach compiled code.  Nor do they choose their threads: the ops
pick a backend with :func:`geomgen.backend.resolve_backend` and launch a kernel
inside :func:`geomgen.backend.kernel_threads`, passing the thread count it gives
(1 = the serial variants).  Only the ops (and ``geomgen.render``'s rasterizer)
import these modules, and only when a kernel is needed; each module compiles its
kernels on first call (``cache=True`` keeps them on disk, so later processes only
load them).
"""

import os as _os

if not (_os.environ.get("NUMBA_THREADING_LAYER") or _os.environ.get("NUMBA_THREADING_LAYER_PRIORITY")):
    # Prefer OpenMP over TBB: PyPI's TBB is often older than numba wants (a warning on every
    # first parallel launch); users can still pick a layer with the environment variables.
    import numba as _numba

    _numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
