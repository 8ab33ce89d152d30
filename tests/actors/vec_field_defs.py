"""Actors and messages with Vec fields (issue 14): the design's histogram, 64-bit and i32 Vecs."""

from __future__ import annotations

import ringkernel as rk
from ringkernel import Vec, f32, f64, i32, i64, u32


@rk.message
class Samples:
    values: Vec[f32, 16]
    n: u32


@rk.message
class Hist:
    low: Vec[u32, 8]
    count: u32


@rk.actor
class Histogrammer:
    bins: Vec[u32, 256]
    marks: Vec[i32, 4] = (1, 2, 3, 4)
    count: u32 = 0

    def add(self, msg: Samples) -> Hist:
        for t in range(16):
            if u32(t) < msg.n:
                rk.atomic_add(self.bins, u32(msg.values[t]) % u32(256), u32(1))
        self.bins[255] += u32(2)
        rk.atomic_sub(self.marks, 3, -10)
        self.count += u32(1)
        low = Vec[u32, 8].zeros()
        for k in range(8):
            low[k] = self.bin(k)
        return Hist(low=low, count=self.count)

    def bin(self, k: i32) -> u32:
        return self.bins[k]


@rk.message
class Pair:
    xs: Vec[f64, 3]
    ks: Vec[i64, 2]


@rk.actor
class WideKeeper:
    last: Vec[f64, 3]
    ks: Vec[i64, 2]

    def keep(self, msg: Pair) -> Pair:
        self.last = msg.xs * 2.0
        self.ks[1] = msg.ks[0] - 1
        return Pair(xs=self.last, ks=self.ks)


@rk.actor
class ShorterBins:
    """Histogrammer's fields with a shorter ``bins``: a different state layout."""

    bins: Vec[u32, 128]
    marks: Vec[i32, 4] = (1, 2, 3, 4)
    count: u32 = 0

    def add(self, msg: Samples) -> None:
        self.count += u32(1)


@rk.message
class Sum:
    total: f32


@rk.actor
class Summer16:
    """Loops over a message's Vec field and a Vec state field."""

    weights: Vec[f32, 16] = 2.0

    def add(self, msg: Samples) -> Sum:
        total = 0.0
        k = 0
        for v in msg.values:
            total += v * self.weights[k]
            k += 1
        for w in self.weights:
            total += w
        return Sum(total=total)
