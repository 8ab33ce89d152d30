"""The shared namer: no target keyword is ever handed out, names are unique and repeatable."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringkernel.lowering.common import GENERATED_PREFIX, Namer, NamingRules
from ringkernel.lowering.msl import target as msl
from ringkernel.lowering.wgsl import target as wgsl

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RULES = {"wgsl": wgsl.NAMES, "msl": msl.NAMES}
# How each backend asks for user names: WGSL puts a fixed prefix before each, MSL none.
PREFIXES = {"wgsl": ("k_", "f_", "v_", "g_", "s_", "u_", "P_"), "msl": ("",)}


@pytest.mark.parametrize("target", sorted(RULES))
def test_no_keyword_of_the_target_is_handed_out(target: str) -> None:
    rules = RULES[target]
    for prefix in PREFIXES[target]:
        namer = Namer(rules)
        for word in sorted(rules.reserved):
            for original in (word, word.upper(), word[len(prefix):]):
                ident = namer.fresh(original, prefix)
                assert ident not in rules.reserved and IDENT.fullmatch(ident), (original, ident)


def test_a_prefixed_base_that_is_a_keyword_is_numbered() -> None:
    rules = NamingRules("toy", frozenset({"v_x", "v_x_1"}), lambda name: name)
    assert Namer(rules).fresh("x", "v_") == "v_x_2"


@pytest.mark.parametrize("target", sorted(RULES))
@given(st.lists(st.text(max_size=12), max_size=25))
def test_names_are_unique_identifiers_and_never_generated_ones(target: str, originals) -> None:
    namer = Namer(RULES[target])
    given_names = [namer.fresh(o, PREFIXES[target][-1]) for o in originals]
    assert len(set(given_names)) == len(given_names)
    for ident in given_names:
        assert IDENT.fullmatch(ident) and ident not in RULES[target].reserved
        assert not ident.lower().startswith(GENERATED_PREFIX)


@pytest.mark.parametrize("target", sorted(RULES))
@given(st.lists(st.text(max_size=12), max_size=25))
def test_naming_is_deterministic(target: str, originals) -> None:
    first, second = Namer(RULES[target]), Namer(RULES[target])
    assert [first.fresh(o, "v_") for o in originals] == [second.fresh(o, "v_") for o in originals]


def test_name_is_memoized_per_kind_and_scopes_inherit_taken_names() -> None:
    outer = Namer(msl.NAMES)
    assert outer.name("function", "k") == outer.name("function", "k") == "k"
    assert outer.name("struct", "k") == "k_1"
    inner = outer.scope()
    assert inner.name("param", "k") == "k_2"
    assert outer.fresh("k") == "k_2"  # the child's names do not leak back


@pytest.mark.parametrize("hostile", ["a; }", "x\n#include <y>", "*/ fn f() {", "naïve", "a-b", "1x"])
def test_injection_attempts_become_plain_identifiers(hostile: str) -> None:
    for target, rules in RULES.items():
        ident = Namer(rules).fresh(hostile, PREFIXES[target][0])
        assert IDENT.fullmatch(ident), (target, ident)


def test_wgsl_changed_names_stay_distinct() -> None:
    namer = Namer(wgsl.NAMES)
    assert namer.fresh("a-b", "v_") != namer.fresh("a+b", "v_")
