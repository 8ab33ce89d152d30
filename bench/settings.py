"""How long and how often to measure: ``--quick`` trades precision for time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    quick: bool
    repeats: int  # timed repeats per measurement; the table shows their median
    min_time: float  # seconds one repeat should last (short calls are batched)
    cold_repeats: int  # cold (cache-cleared) measurements, which are expensive

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(quick=True, repeats=3, min_time=0.005, cold_repeats=1)
        return cls(quick=False, repeats=7, min_time=0.03, cold_repeats=3)
