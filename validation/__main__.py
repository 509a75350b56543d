"""``python -m validation [options]``: the same as ``eprop validate`` (see :mod:`validation.cli`)."""

import sys

from .cli import run

sys.exit(run())
