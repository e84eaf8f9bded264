"""`python -m lightning_memrl` is `memrl`."""

import sys

from lightning_memrl.tools.main import main

sys.exit(main())
