"""``python -m ringkernel`` is ``ringc``; ``python -m ringkernel top URL`` watches a served system."""

import sys

if sys.argv[1:2] == ["top"]:
    from ringkernel.observability.top import main as top

    sys.exit(top(sys.argv[2:]))

from ringkernel.cli import main

sys.exit(main())
