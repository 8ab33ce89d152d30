"""``python -m ringkernel`` is ``ringc``."""

import sys

from ringkernel.cli import main

sys.exit(main())
