"""An actor with a budget whose handler calls looping funcs that return a tuple and fill a local array."""

import ringkernel as rk
from ringkernel import Array, i32


@rk.message
class Spin:
    n: i32


@rk.message
class Spun:
    total: i32
    calls: i32


@rk.func
def count_twice(n: i32) -> tuple[i32, i32]:
    """Loops (n < 0: forever), so the budget pass checks it and must be able to unwind it."""
    i = 0
    s = 0
    while i < n or n < 0:
        i += 1
        s += 2
    return i, s


@rk.func
def fill(w: Array[i32], n: i32) -> i32:
    for k in range(4):
        w[k] = n + k
    return w[0] + w[3]


@rk.actor(budget=10_000)
class TupleSpinner:
    total: i32 = 0
    calls: i32 = 0

    def spin(self, msg: Spin) -> Spun:
        self.calls += 1
        a, b = count_twice(msg.n)
        w = rk.local_array(i32, 4)
        self.total += a + b + fill(w, msg.n)
        return Spun(total=self.total, calls=self.calls)
