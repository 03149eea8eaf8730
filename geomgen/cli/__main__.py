"""``python -m geomgen.cli ...``: the same entry point as the ``geomgen`` script (and ``torchrun -m geomgen.cli``)."""

import sys

from geomgen.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
