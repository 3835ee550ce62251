"""``python -m flipclock`` is the ``flipclock`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
