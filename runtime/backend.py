"""The kernel backend interface: what the facade needs from a runtime to launch a kernel.

A launch is three steps, and only the last is the runtime's:

1. the backend says which compile target its device runs (:attr:`Backend.target`)
   and, from the launch (block, arguments, ``checked``), which compile options
   its device decides (:meth:`Backend.compile_options`), refusing settings it
   cannot run with a ``LaunchError``;
2. the facade compiles through the one driver (``ringkernel.compiler``: one
   verify, the memory and disk caches);
3. the backend runs the :class:`KernelBuild` (:meth:`Backend.launch`).

So no runtime calls back into the compiler; the actor runtimes
(:mod:`ringkernel.runtime.actor_host`) follow the same split.

A backend that supports device arrays also has a ``memory`` attribute (a
:class:`~ringkernel.runtime.device_array.DeviceMemory`: its pool, copies and
waits); ``launch`` then receives :class:`~ringkernel.runtime.device_array.DeviceArray`
arguments of its own backend (the facade checks) and uses them in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from ringkernel.ringir import Module

Dim3 = tuple[int, int, int]


class KernelBuild(NamedTuple):
    """A compiled kernel as the facade hands it over: target text and what it was made from.

    ``module`` is the verified RingIR the text was compiled from (its
    parameters describe the arguments), ``options`` the compile options the
    backend asked for.  A named tuple: one is made per launch, and that must
    cost next to nothing.
    """

    module: Module
    kernel_name: str
    target: str
    options: Mapping[str, Any]
    text: str


class Backend(Protocol):
    """One kernel backend (cpu, wgpu, cuda, metal); ``ringkernel.runtime`` lists them."""

    name: str
    target: str  # the compile target whose text it runs

    @classmethod
    def available(cls) -> bool:
        """Whether it can run here (cheap, never raises)."""

    @classmethod
    def unavailable_reason(cls) -> str:
        """Why not, or ``""``."""

    def compile_options(
        self,
        module: Module,
        kernel_name: str,
        grid: Dim3,
        block: Dim3,
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> dict[str, Any]:
        """Checks the launch against the device and returns the options to compile it with."""

    def launch(
        self,
        build: KernelBuild,
        grid: Dim3,
        block: Dim3,
        args: Sequence[Any],
        *,
        checked: bool | None = None,
    ) -> None:
        """Runs ``build`` (compiled with this launch's options) over ``grid`` x ``block``.

        numpy arrays in ``args`` (from ``bind_arguments``) are updated in
        place; device arrays are used where they live, and a launch whose
        arrays are all device arrays may return before the device finishes.
        """
