"""Compiled implementations behind :mod:`geomgen.ops` (numba on CPU, torch/Triton on GPU).

Files mirror ``geomgen/ops`` by name (``knn_numba.py`` serves ``ops/knn.py``).  Kernels
never validate: the public op in ``geomgen.ops`` checks every argument first, so
bad indices never reach compiled code.  Importing this package is free; each
module compiles its kernels on first call (``cache=True`` keeps them on disk).
"""
