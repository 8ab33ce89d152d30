"""The backend actor hosts, as far as they run without their hardware.

The cuda and metal hosts cannot run here; what they share with the hosts
that do (the backend-neutral ActorSystem, the re-dispatch pump that
``test_actors_run.py`` drives on wgpu and on the cpu JIT) is tested there.
This file tests the pieces each of them builds by itself: launch arguments,
buffer indices, binding order, and the pump's bookkeeping.
"""

from __future__ import annotations

import os
import re
import sys
import time

import numpy as np
import pytest

import ringkernel as rk
from ringkernel.ringir import layout as L
from ringkernel.ringir.passes.actor_lowering import KERNEL_PARAMS
from ringkernel.runtime import BackendUnavailable
from ringkernel.runtime.actor_host import ActorMemory
from ringkernel.runtime.actor_pump import ring_ranges

sys.path.insert(0, os.path.dirname(__file__))
from actor_defs import Accumulator, Add, Counter, Doubler, Incrementer, Num, Summer  # noqa: E402

PORTABLE = [Accumulator, Doubler, Incrementer, Summer]


def _memory() -> ActorMemory:
    words = (L.CONTROL_WORDS, 2, L.queue_words(4, 8), L.queue_words(2, 8), L.queue_words(4, 8),
             L.queue_words(2, 8), L.queue_words(2, 8))
    return ActorMemory(*(np.zeros(n, dtype=np.uint32) for n in words), out_to_host=True)


@pytest.mark.parametrize("name", ["cuda", "metal"])
def test_missing_backends_say_why(name):
    if name in rk.backends():
        pytest.skip(f"{name} is available here")
    with pytest.raises(BackendUnavailable, match=name) as info:
        rk.ActorSystem(backend=name)
    assert len(str(info.value)) > len(f"backend '{name}' is not available: ")


def test_unknown_actor_backend_is_a_value_error():
    with pytest.raises(ValueError, match="unknown"):
        rk.ActorSystem(backend="tpu")


def test_cuda_launch_arguments_follow_the_kernel_signature():
    from ringkernel.runtime.cuda.actors import launch_arguments, launch_config

    memory = _memory()
    args = launch_arguments(memory, lambda a: a.ctypes.data)
    assert [int(a) for a in args] == [a.ctypes.data for a in memory.arrays]
    assert all(isinstance(a, np.intp) for a in args)
    assert launch_config(4) == {"block": (4, 1, 1), "grid": (1, 1, 1)}
    with pytest.raises(ValueError, match="lanes"):
        launch_config(0)
    bad = ActorMemory(memory.ctrl.astype(np.int64), *memory.arrays[1:], out_to_host=True)
    with pytest.raises(ValueError, match="'ctrl'.*uint32"):
        launch_arguments(bad, lambda a: 0)


@pytest.mark.parametrize("actor", PORTABLE + [Counter], ids=lambda a: a.__name__)
def test_cuda_finds_the_persistent_kernel_by_its_ptx_symbol(actor):
    from ringkernel.lowering.cuda import ptx_kernel_symbol

    ptx = actor.compile("ptx")
    symbol = ptx_kernel_symbol(actor.__name__)
    params = re.findall(rf"\.param \.u64 \.ptr \.global \.align \d+ {symbol}_param_(\d)", ptx)
    assert f".entry {symbol}(" in ptx and params == [str(i) for i in range(len(L.KERNEL_PARAMS))]


@pytest.mark.parametrize("actor", PORTABLE, ids=lambda a: a.__name__)
def test_metal_buffer_indices_match_the_msl(actor):
    from ringkernel.runtime.metal.actors import buffer_indices

    module = actor.module("batch")
    indices = buffer_indices(module, actor.__name__)
    msl = actor.compile("msl")
    for name, index in zip(KERNEL_PARAMS, indices):
        assert re.search(rf"\b{name} \[\[buffer\({index}\)\]\]", msl), (name, index)


@pytest.mark.parametrize("actor", PORTABLE, ids=lambda a: a.__name__)
def test_wgsl_bindings_are_the_kernel_parameters_in_order(actor):
    from ringkernel.lowering.wgsl import plan_kernel_bindings

    plan = plan_kernel_bindings(actor.module("batch").get(actor.__name__))
    assert [(a.param, a.binding) for a in plan.arrays] == [(n, i) for i, n in enumerate(KERNEL_PARAMS)]
    assert plan.uniform_binding is None


def test_ring_ranges_split_at_the_end_of_the_ring():
    assert ring_ranges(0, 4, 8) == [(0, 4)]
    assert ring_ranges(6, 4, 8) == [(6, 2), (0, 2)]
    assert ring_ranges(6, 20, 8) == [(6, 2), (0, 6)]  # never more than the ring
    assert ring_ranges(3, 0, 8) == []


def test_the_pump_dispatches_pipelines_upstream_first(actor_backend):
    if actor_backend not in ("wgpu", "metal", "cpu-batch"):
        pytest.skip("only re-dispatching backends have a pump")
    with rk.ActorSystem(backend=actor_backend) as system:
        c = system.spawn(Summer, queue_capacity=16)
        b = system.spawn(Incrementer, queue_capacity=16)
        a = system.spawn(Doubler, queue_capacity=16)
        system.connect(b, c)
        system.connect(a, b)
        assert [h.name for h in system.runtime.actors] == ["Doubler", "Incrementer", "Summer"]
        a.send(Num(value=1.0))
        assert c.receive(timeout=5.0).total == 3.0


def test_an_idle_pump_only_keeps_the_heartbeat(actor_backend):
    if actor_backend not in ("wgpu", "metal", "cpu-batch"):
        pytest.skip("only re-dispatching backends have a pump")
    with rk.ActorSystem(backend=actor_backend) as system:
        acc = system.spawn(Accumulator, queue_capacity=16)
        acc.send(Add(value=1.0))
        acc.receive(timeout=5.0)
        time.sleep(0.05)
        rounds = system.runtime.rounds
        time.sleep(1.0)
        idle_rounds = system.runtime.rounds - rounds
    assert 2 <= idle_rounds <= 1.0 / system.runtime.keepalive + 2, idle_rounds
