"""Regenerates docs/dsl.md's builtin list from the builtin table (frontends/builtins.py).

    python tools/gen_builtin_docs.py           # rewrite the section in place
    python tools/gen_builtin_docs.py --check   # exit 1 if the section is out of date

The list sits between two HTML comments; the rest of docs/dsl.md is prose and
stays hand-written.  tests/frontends/test_builtin_table.py fails when the list
is stale, so a new builtin cannot land without its doc line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ringkernel.frontends.builtins import DOC_BEGIN, DOC_END, docs_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "dsl.md"


def regenerate(text: str) -> str:
    """``text`` with the section between the markers replaced by the table's current list."""
    start, end = text.index(DOC_BEGIN), text.index(DOC_END) + len(DOC_END)
    return text[:start] + docs_table() + text[end:]


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    fresh = regenerate(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{DOC} is out of date; run python tools/gen_builtin_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
