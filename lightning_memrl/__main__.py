"""`python -m lightning_memrl` is `memrl`."""

import sys

from lightning_memrl.cli import main

sys.exit(main())
