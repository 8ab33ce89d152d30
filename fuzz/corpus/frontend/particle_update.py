import math

import numpy as np

import ringkernel as rk
from ringkernel import Array, Vec, f16, f32, f64, i32, u8, u16, u32

BLOCK = 64
THRESHOLD = 0.5
N = 1000
RED = 64
BINS = 16
WARPS = 64
TILE = 8
HEAT_STEPS = 5
SORT_N = 64
POLY = np.array([0.5, -1.0, 0.25, 2.0], dtype=np.float32)
WEIGHTS = np.array([[1, 2], [3, 4]], dtype=np.int32)
GENERIC_SUM_DTYPES = (np.float32, np.int32, np.uint32)
@rk.struct
class Body:
    pos: Vec[f32, 3]
    vel: Vec[f32, 3]
    m: f32
NBODY = 96
NBODY_DT = 0.01
NBODY_SOFT = 0.05
@rk.struct
class BodyD:
    pos: Vec[f64, 3]
    vel: Vec[f64, 3]
    m: f64
@rk.struct
class Spin:
    axis: Vec[f32, 3]
    turns: u8
@rk.struct
class Particle:
    alive: bool
    kind: u8
    age: u16
    pos: Vec[f32, 3]
    spin: Spin
    mass: f64
PARTICLES = 200
BS_N = 500
V4_N = 300


@rk.func
def clamp01(v: f32) -> f32:
    if v < 0.0:
        return 0.0
    return min(v, 1.0)


@rk.func
def smooth(v: f32, k: f32) -> f32:
    c = clamp01(v * k)
    return c * c * (3.0 - 2.0 * c)


@rk.func
def add_into(out: Array[f32], i: i32, v: f32):
    out[i] = out[i] + v


@rk.func
def compare_swap(s: Array[f32], i: i32, j: i32, ascending: bool):
    """The bitonic comparator, over whatever memory ``s`` lives in."""
    a, b = s[i], s[j]
    if (a > b and ascending) or (a < b and not ascending):
        s[i] = b
        s[j] = a


@rk.func
def body_accel(bi: Body, bj: Body) -> Vec[f32, 3]:
    d = bj.pos - bi.pos
    r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + NBODY_SOFT
    inv = rk.rsqrt(r2)
    return d * (bj.m * inv * inv * inv)


@rk.func
def body_accel_d(bi: BodyD, bj: BodyD) -> Vec[f64, 3]:
    d = bj.pos - bi.pos
    r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + NBODY_SOFT
    inv = 1.0 / math.sqrt(r2)
    return d * (bj.m * inv * inv * inv)


@rk.func
def cnd(d: f32) -> f32:
    """The cumulative normal distribution, as CUDA's BlackScholes sample approximates it."""
    k = 1.0 / (1.0 + 0.2316419 * abs(d))
    poly = k * (0.31938153 + k * (-0.356563782 + k * (1.781477937 + k * (-1.821255978 + k * 1.330274429))))
    c = 0.3989422804014327 * math.exp(-0.5 * d * d) * poly
    return 1.0 - c if d > 0.0 else c


@rk.func
def black_scholes_pair(s: f32, x: f32, t: f32, r: f32, v: f32) -> tuple[f32, f32]:
    sqrt_t = math.sqrt(t)
    d1 = (math.log(s / x) + (r + 0.5 * v * v) * t) / (v * sqrt_t)
    d2 = d1 - v * sqrt_t
    c1, c2 = cnd(d1), cnd(d2)
    discount = math.exp(-r * t)
    return s * c1 - x * discount * c2, x * discount * (1.0 - c2) - s * (1.0 - c1)


@rk.kernel
def particle_update(ps: Array[Particle], wind: Array[Vec[f32, 3]], energy: Array[f64], n: i32):
    """Struct fields of every width: bool, u8 and u16 share a word, a nested struct holds a Vec, f64 mass."""
    i = rk.global_id(0)
    if i < n and ps[i].alive:
        p = ps[i]
        p.pos += wind[i32(p.kind)] * p.spin.axis
        p.age = u16(p.age + 1)
        p.spin.turns = u8(p.spin.turns + 3)
        p.alive = p.age != u16(0)
        ps[i] = p
        v = f64(p.pos[0]) * f64(p.pos[0]) + f64(p.pos[1]) * f64(p.pos[1]) + f64(p.pos[2]) * f64(p.pos[2])
        energy[i] = 0.5 * p.mass * v
