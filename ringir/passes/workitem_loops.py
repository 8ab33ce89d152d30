"""Work-item loops: a kernel with barriers rewritten so one call runs a whole block.

PoCL's strategy, over RingIR's structured control flow.  The code between
two barriers (a *region*) becomes a ``for`` loop over the block's work-items
(z, y, then x innermost) calling the region, turned into a ``func``; control
flow that contains a barrier (or a ``break``/``continue`` of a loop that
does) stays one control structure around the regions, its condition taken
from the work-items, which agree because it is uniform
(:mod:`ringkernel.ringir.passes.uniformity`).  Running work-items one after
another between barriers is a valid schedule, and the barrier becomes the
end of a loop: no threads, no waiting.

What crosses a barrier is privatized per work-item, in extra shared arrays
of :data:`SLOTS` entries indexed by the flat work-item id:

- an SSA value defined in one region and used in another is stored after its
  definition and loaded at the start of each region using it;
- a local used in more than one region, or in a region inside a loop with a
  barrier, is loaded at region start and stored back at region end (the
  arrays start zeroed, as locals do);
- a uniform value the block-level control flow needs (an ``if`` condition,
  ``range`` bounds) is written by every work-item into a one-entry array.

With ``interchange`` (the default) carrying is cheaper and the work-item loop
gets the innermost place, so LLVM vectorizes across work-items
(:mod:`ringkernel.ringir.passes.workitem_interchange`,
:mod:`ringkernel.ringir.passes.grid_stride`): uniform ``range`` loops run at
block level; a local that every region assigns before reading is not
carried; a uniform local is one kernel local (plus a one-entry array each
work-item writes back); a local assigned once at the top level from the
indices (``tx = thread_id(0)``) is recomputed in each region; a uniform
value recomputable from constants, parameters and block indices is computed
at block level; a region ``if tid < s: ...`` loops over ``[0, s)`` only.

A ``return`` ends the region's function with ``true``: the work-item is
marked done and skipped by later regions, and the block ends when no
work-item is left — the cpu thread path's semantics, where a work-item that
returns leaves the barrier.

Kernels this cannot prove right (a barrier under a condition that differs
between work-items, a loop with barriers whose trip count differs, ...)
raise :class:`NotTransformable`; :func:`plan_block` then keeps one thread
per work-item.  So do kernels that idle with ``backoff()``: they may wait for
another work-item of their block between barriers, which only concurrent
threads can satisfy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from ringkernel.ringir import (
    Backoff,
    Barrier,
    Binary,
    Break,
    Call,
    Compare,
    Const,
    ConstArray,
    Continue,
    ForRange,
    Function,
    GridSync,
    If,
    Load,
    LoadVar,
    LocalVar,
    Loop,
    Module,
    NodeVisitor,
    Return,
    SharedArray,
    Stmt,
    Store,
    StoreVar,
    ThreadIndex,
    Value,
    operands,
    result_of,
    walk,
)
from ringkernel.ringir.diagnostics import CompileError
from ringkernel.ringir.passes.grid_stride import version_grid_stride_loops
from ringkernel.ringir.passes.one_lane_subgroups import one_lane_subgroups
from ringkernel.ringir.passes.uniformity import UNIFORM_INDICES, Uniformity, analyze_uniformity
from ringkernel.ringir.passes.workitem_interchange import (
    Guard,
    definitions,
    interchangeable_loops,
    narrowing_guard,
    pure_chain,
)
from ringkernel.ringir.types import BOOL, I32, VOID, AddressSpace, ArrayType, ScalarType
from ringkernel.ringir.verifier import verify

# Entries of every per-work-item array: the most work-items a block may have.
SLOTS = 1024


# How a block's work-items run on a host: one after another (no barrier), as
# work-item loops, as coroutines resumed barrier by barrier (barriers under
# control flow that differs between work-items), or one OS thread each
# (kernels that idle with backoff, whose work-items may wait for each other).
# A kernel with grid_sync needs every block at once: one OS thread per work-item
# of the whole grid, all started together (a cooperative launch).
PLAIN, LOOPS, COROUTINES, THREADS, GRID = "plain", "loops", "coroutines", "threads", "grid"


class NotTransformable(Exception):
    """Why a kernel keeps the thread-per-work-item path (the message says what was found)."""


@dataclass(frozen=True)
class BlockPlan:
    """How one kernel's block runs on a host, and the module to lower for it.

    ``module`` is the rewritten one when ``mode`` is :data:`LOOPS`, else the
    input; ``reason`` says why a kernel with barriers did not get :data:`LOOPS`.
    """

    module: Module
    mode: str
    reason: str = ""


def uses_barrier(fn: Function) -> bool:
    return any(isinstance(s, Barrier) for s in walk(fn.body))


def uses_grid_sync(fn: Function) -> bool:
    """Whether kernel ``fn`` syncs the grid (the verifier keeps grid_sync out of funcs)."""
    return any(isinstance(s, GridSync) for s in walk(fn.body))


def plan_block(module: Module, kernel_name: str, workitem_loops: bool = True) -> BlockPlan:
    """The block strategy of ``kernel_name`` (``workitem_loops=False`` forbids the rewrite).

    A deterministic function of its arguments: the LLVM host lowering and the
    cpu runtime (which only needs the mode) both ask it and agree.  A kernel
    the rewrite with interchanged loops
    (:mod:`ringkernel.ringir.passes.workitem_interchange`) cannot handle gets
    the rewrite without.
    """
    if uses_grid_sync(module.get(kernel_name)):
        return BlockPlan(module, GRID, "the kernel calls grid_sync: every block runs at once")
    if not uses_barrier(module.get(kernel_name)):
        return BlockPlan(module, PLAIN)
    if not workitem_loops:
        return BlockPlan(module, THREADS, "work-item loops were not requested")
    reason = ""
    for interchange in (True, False):
        try:
            return BlockPlan(verify(to_workitem_loops(module, kernel_name, interchange)), LOOPS)
        except NotTransformable as exc:
            reason = str(exc)
        except CompileError as exc:  # a bug in the rewrite must not cost correctness
            reason = f"internal error in the work-item loop rewrite: {exc}"
    if _idles(module, module.get(kernel_name)):
        return BlockPlan(module, THREADS, reason)
    return BlockPlan(module, COROUTINES, reason)


def _idles(module: Module, fn: Function) -> bool:
    """Whether ``fn`` (or a func it calls) idles with backoff: its work-items need real threads."""
    return any(isinstance(s, Backoff) for s in _reachable_statements(module, fn))


def to_workitem_loops(module: Module, kernel_name: str, interchange: bool = True) -> Module:
    """``module`` with ``kernel_name`` running one whole block per call, plus its region funcs.

    ``interchange`` also puts uniform ``range`` loops of regions at block level
    and narrows guarded regions (:mod:`ringkernel.ringir.passes.workitem_interchange`).
    Other kernels are dropped: the result is compiled for this kernel only.
    The returned kernel uses no barrier and no ``thread_id``/``global_id``.
    The host's subgroups have one lane, so subgroup operations first become
    plain statements (region funcs are funcs, where they are not allowed).
    """
    module = one_lane_subgroups(module)
    fn = module.get(kernel_name)
    if not uses_barrier(fn):
        raise NotTransformable(f"kernel '{kernel_name}' has no barrier")
    if _idles(module, fn):
        raise NotTransformable(
            "the kernel idles with backoff(): its work-items may wait for each other, "
            "which needs them to run concurrently"
        )
    return _Transformer(module, fn, interchange).run()


def _reachable_statements(module: Module, fn: Function) -> list[Stmt]:
    """Every statement of ``fn`` and of the funcs it calls, directly or not."""
    seen, todo, found = {fn.name}, [fn], []
    while todo:
        for stmt in walk(todo.pop().body):
            found.append(stmt)
            if isinstance(stmt, Call) and stmt.callee not in seen:
                seen.add(stmt.callee)
                todo.append(module.get(stmt.callee))
    return found


def region_functions(module: Module, kernel_name: str) -> list[str]:
    """Names of the region funcs :func:`to_workitem_loops` added for ``kernel_name``."""
    return [f.name for f in module.functions if f.name.startswith(f"{kernel_name}.wi")]


@dataclass(eq=False)
class _RegionStmt(Stmt):
    """Placeholder in the block-level skeleton: a barrier-free run of statements."""

    index: int
    body: tuple[Stmt, ...]
    loop_depth: int


@dataclass
class _RegionInfo:
    defs: set[str] = field(default_factory=set)
    uses: dict[str, Value] = field(default_factory=dict)
    locals: dict[str, LocalVar] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)
    indices: set[tuple[str, int]] = field(default_factory=set)
    returns: bool = False


class _Names:
    """Fresh names that collide with nothing in the kernel or the module."""

    def __init__(self, module: Module, fn: Function) -> None:
        self.used = {f.name for f in module.functions}
        self.used.update(p.name for p in fn.params)
        self.used.update(v.name for v in fn.locals)
        for stmt in walk(fn.body):
            r = result_of(stmt)
            if r is not None:
                self.used.add(r.name)

    def fresh(self, stem: str) -> str:
        n = 0
        while f"{stem}{n}" in self.used:
            n += 1
        name = f"{stem}{n}"
        self.used.add(name)
        return name

    def value(self, stem: str, ty: object) -> Value:
        return Value(self.fresh(stem), ty)  # type: ignore[arg-type]


def _map_stmt(stmt: Stmt, on_value: Callable[[Value], Value],
              on_body: Callable[[tuple[Stmt, ...]], tuple[Stmt, ...]]) -> Stmt:
    """``stmt`` with every operand passed through ``on_value`` and every region through ``on_body``."""
    changes: dict[str, object] = {}
    for f in fields(stmt):  # type: ignore[arg-type]
        if f.name in ("result", "loc"):
            continue
        v = getattr(stmt, f.name)
        if isinstance(v, Value):
            changes[f.name] = on_value(v)
        elif isinstance(v, tuple) and v and isinstance(v[0], Value):
            changes[f.name] = tuple(on_value(x) for x in v)
        elif isinstance(v, tuple) and v and isinstance(v[0], Stmt):
            changes[f.name] = on_body(v)
    return replace(stmt, **changes) if changes else stmt  # type: ignore[type-var]


def _contains_barrier(stmt: Stmt) -> bool:
    return any(isinstance(s, Barrier) for s in walk((stmt,)))


def _block_level(stmt: Stmt, in_barrier_loop: bool) -> bool:
    """Whether ``stmt`` must stay block-level control flow rather than run per work-item.

    ``in_barrier_loop``: the innermost loop around ``stmt`` contains a barrier,
    so a ``break``/``continue`` here leaves or restarts block-level control.
    """
    if isinstance(stmt, Barrier):
        return True
    if isinstance(stmt, (Break, Continue)):
        return in_barrier_loop
    if isinstance(stmt, If):
        return any(_block_level(s, in_barrier_loop) for s in (*stmt.then_body, *stmt.else_body))
    if isinstance(stmt, (Loop, ForRange)):
        return _contains_barrier(stmt)
    return False


def _strip_shared(body: tuple[Stmt, ...], found: list[SharedArray | ConstArray]) -> tuple[Stmt, ...]:
    """``body`` without its ``shared_array`` statements (one static allocation each), collected.

    Constant arrays go with them: one block-wide read-only table each.
    """
    out: list[Stmt] = []
    for stmt in body:
        if isinstance(stmt, (SharedArray, ConstArray)):
            found.append(stmt)
            continue
        out.append(_map_stmt(stmt, lambda v: v, lambda b: _strip_shared(b, found)))
    return tuple(out)


class _Splitter(NodeVisitor):
    """Cuts a kernel body into regions inside a skeleton of block-level control flow."""

    def __init__(self, fn: Function, uniformity: Uniformity, interchange: bool,
                 originals: frozenset[int] = frozenset()) -> None:
        self.fn = fn
        self.uniformity = uniformity
        self.interchange = interchange
        self.originals = originals  # grid-stride loops whose versioned copy may interchange
        self.hoisted: set[int] = set()  # id() of the range loops put at block level
        self.regions: list[_RegionStmt] = []
        self.block_uses: dict[str, Value] = {}
        self.loop_vars: set[str] = set()
        self.in_barrier_loop = False
        self.depth = 0
        self.params = {p.name for p in fn.params}
        self.var_writers: dict[str, int] = {}
        for stmt in walk(fn.body):
            if isinstance(stmt, (StoreVar, ForRange)):
                self.var_writers[stmt.var.name] = self.var_writers.get(stmt.var.name, 0) + 1

    def split(self, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        if self.interchange:
            self.choose_loops(body)
        out: list[Stmt] = []
        run: list[Stmt] = []
        for stmt in body:
            if not _block_level(stmt, self.in_barrier_loop) and id(stmt) not in self.hoisted:
                run.append(stmt)
                continue
            self.flush(run, out)
            lowered = self.visit(stmt)
            if lowered is not None:
                out.append(lowered)
        self.flush(run, out)
        return tuple(out)

    def choose_loops(self, body: tuple[Stmt, ...]) -> None:
        """Marks the uniform loops of each barrier-free run of ``body`` to put at block level."""
        run: list[Stmt] = []
        for stmt in (*body, None):
            if stmt is not None and not _block_level(stmt, self.in_barrier_loop):
                run.append(stmt)
                continue
            self.hoisted |= interchangeable_loops(run, self.uniformity, self.var_writers, self.originals)
            run = []

    def flush(self, run: list[Stmt], out: list[Stmt]) -> None:
        if run:
            region = _RegionStmt(len(self.regions), tuple(run), self.depth)
            self.regions.append(region)
            out.append(region)
            run.clear()

    def need_uniform(self, value: Value, what: str, stmt: Stmt) -> None:
        if not self.uniformity.is_uniform(value):
            loc = getattr(stmt, "loc", None)
            where = f" (line {loc.line})" if loc else ""
            raise NotTransformable(
                f"{what} around a barrier may differ between work-items{where}"
            )
        if value.name not in self.params:
            self.block_uses[value.name] = value

    def loop_body(self, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        outer = self.in_barrier_loop
        self.in_barrier_loop = True
        self.depth += 1
        try:
            return self.split(body)
        finally:
            self.in_barrier_loop = outer
            self.depth -= 1

    def visit_Barrier(self, s: Barrier) -> None:
        return None  # the end of the region before it is the barrier

    def visit_Break(self, s: Break) -> Stmt:
        return s

    def visit_Continue(self, s: Continue) -> Stmt:
        return s

    def visit_If(self, s: If) -> Stmt:
        self.need_uniform(s.cond, "the condition of an 'if'", s)
        return If(s.cond, self.split(s.then_body), self.split(s.else_body), loc=s.loc)

    def visit_Loop(self, s: Loop) -> Stmt:
        return Loop(self.loop_body(s.body), loc=s.loc)

    def visit_ForRange(self, s: ForRange) -> Stmt:
        for v, what in ((s.start, "start"), (s.stop, "stop"), (s.step, "step")):
            self.need_uniform(v, f"the {what} of a 'range' loop", s)
        if self.var_writers.get(s.var.name, 0) != 1:
            raise NotTransformable(
                f"the variable ${s.var.name} of a 'range' loop with a barrier is assigned elsewhere"
            )
        self.loop_vars.add(s.var.name)
        return ForRange(s.var, s.start, s.stop, s.step, self.loop_body(s.body), loc=s.loc)


def _region_info(region: _RegionStmt) -> _RegionInfo:
    info = _RegionInfo()
    for stmt in walk(region.body):
        r = result_of(stmt)
        if r is not None:
            info.defs.add(r.name)
        for v in operands(stmt):
            info.uses.setdefault(v.name, v)
        if isinstance(stmt, (LoadVar, StoreVar, ForRange)):
            info.locals[stmt.var.name] = stmt.var
        if isinstance(stmt, (StoreVar, ForRange)):
            info.stored.add(stmt.var.name)
        if isinstance(stmt, ThreadIndex):
            if stmt.kind == "global_id":
                info.indices.update({("block_id", stmt.dim), ("block_dim", stmt.dim)})
            elif stmt.kind != "thread_id":
                info.indices.add((stmt.kind, stmt.dim))
        if isinstance(stmt, Return):
            info.returns = True
    for name in info.defs:
        info.uses.pop(name, None)
    return info


def read_before_write(body: tuple[Stmt, ...], name: str) -> bool:
    """Whether ``body`` may read local ``name`` before assigning it (the value it starts with).

    Only an assignment at this level kills; a loop or an ``if`` may skip theirs.
    """
    for stmt in body:
        if isinstance(stmt, LoadVar) and stmt.var.name == name:
            return True
        if isinstance(stmt, StoreVar) and stmt.var.name == name:
            return False
        if isinstance(stmt, If) and (read_before_write(stmt.then_body, name)
                                     or read_before_write(stmt.else_body, name)):
            return True
        if isinstance(stmt, ForRange) and stmt.var.name == name:
            continue  # assigned before each iteration; after it, maybe never (no kill)
        if isinstance(stmt, (Loop, ForRange)) and read_before_write(stmt.body, name):
            return True
    return False


def _zero(ty: ScalarType) -> bool | int | float:
    return False if ty.is_bool else 0.0 if ty.is_float else 0


# What a region func's parameter receives: a kernel value ("value"), the
# work-item index on an axis ("axis"), the flat index ("flat", None) or a
# local's current value ("var").
_ArgKey = Value | int | LocalVar | None


@dataclass
class _Callee:
    """A region's func and what to pass it: (kind, key) per parameter."""

    fn: Function
    args: list[tuple[str, _ArgKey]]


class _Transformer:
    def __init__(self, module: Module, fn: Function, interchange: bool) -> None:
        self.module = module
        self.fn = fn
        self.interchange = interchange
        self.names = _Names(module, fn)

    # --- analysis ---

    def run(self) -> Module:
        fn = self.fn
        self.shared: list[SharedArray | ConstArray] = []
        body = _strip_shared(fn.body, self.shared)
        originals: frozenset[int] = frozenset()
        if self.interchange:
            fn = self.fn = self.version_grid_stride(replace(fn, body=body))
            body, originals = fn.body, frozenset(self.originals)
        uniformity = analyze_uniformity(fn)
        splitter = _Splitter(fn, uniformity, self.interchange, originals)
        skeleton = splitter.split(body)
        self.regions = splitter.regions
        self.loop_vars = splitter.loop_vars
        self.infos = [_region_info(r) for r in self.regions]
        self.kernel_values = {p.name: p for p in fn.params}
        self.kernel_values.update({s.result.name: s.result for s in self.shared})
        self.defs = definitions(body)
        self.classify_locals(body, uniformity, splitter.var_writers)
        self.home: dict[str, int] = {}
        self.const_defs: dict[str, Const] = {}
        for region, info in zip(self.regions, self.infos):
            for name in info.defs:
                self.home[name] = region.index
            for stmt in walk(region.body):
                if isinstance(stmt, Const):
                    self.const_defs[stmt.result.name] = stmt
        self.crossing: dict[str, Value] = {}
        for info in self.infos:
            for name, v in info.uses.items():
                if name in self.kernel_values:
                    continue
                if name not in self.home:
                    raise NotTransformable(f"value %{name} has no definition in any region")
                if isinstance(v.type, ArrayType):
                    # a local array is per work-item storage, not one value to spill
                    raise NotTransformable(f"local array %{name} is used across a barrier")
                self.crossing[name] = v
        scalars = {p.name for p in fn.params if isinstance(p.type, ScalarType)}
        self.block_chains: dict[str, list[Stmt]] = {}  # recomputed at block level
        for n, v in splitter.block_uses.items():
            chain = pure_chain(v, self.defs, scalars, set(), set(UNIFORM_INDICES))
            if self.interchange and n not in self.const_defs and chain is not None:
                self.block_chains[n] = chain
        self.ubuf_values = {
            n: v for n, v in splitter.block_uses.items()
            if n not in self.const_defs and n not in self.block_chains
        }
        self.guards = self.narrow() if self.interchange else {}
        self.returns = any(info.returns for info in self.infos)
        return self.build(skeleton)

    def version_grid_stride(self, fn: Function) -> Function:
        """``fn`` with its grid-stride loops versioned (:mod:`~ringkernel.ringir.passes.grid_stride`)."""
        writers: dict[str, int] = {}
        for stmt in walk(fn.body):
            if isinstance(stmt, (StoreVar, ForRange)):
                writers[stmt.var.name] = writers.get(stmt.var.name, 0) + 1
        body, new_vars, self.originals = version_grid_stride_loops(
            fn.body, analyze_uniformity(fn), writers, self.names.value,
            lambda stem, ty: LocalVar(self.names.fresh(stem), ty),  # type: ignore[arg-type]
        )
        return replace(fn, body=body, locals=(*fn.locals, *new_vars))

    def classify_locals(self, body: tuple[Stmt, ...], uniformity: Uniformity,
                        var_writers: dict[str, int]) -> None:
        """Which locals crossing regions live per work-item, and which more cheaply.

        A local used in several regions, or in a region inside a block-level
        loop, needs its value carried between them.  A *uniform* one (the same
        in every work-item) becomes a kernel local: each region gets its value
        as an argument and, if it assigns it, every work-item writes the
        (same) new value to a one-entry array read back after the region.  A
        local assigned once, at the kernel's top level, with a cheap pure
        function of the indices (``tx = thread_id(0)``) is recomputed at the
        start of each later region that uses it.  The others are privatized:
        one array entry per work-item.
        """
        regions_of: dict[str, set[int]] = {}
        for region, info in zip(self.regions, self.infos):
            for name in info.locals:
                regions_of.setdefault(name, set()).add(region.index)
        crossing = {
            name for name, where in regions_of.items()
            if name not in self.loop_vars
            and (len(where) > 1 or any(self.regions[i].loop_depth for i in where))
        }
        if self.interchange:  # a local every region assigns before reading carries nothing
            crossing = {n for n in crossing
                        if any(read_before_write(self.regions[i].body, n) for i in regions_of[n])}
        self.cells = crossing & uniformity.locals if self.interchange else set()
        self.remat: dict[str, tuple[list[Stmt], StoreVar, int]] = {}
        if self.interchange:
            self.rematerialize(body, crossing - self.cells, regions_of, var_writers)
        self.private = crossing - self.cells - set(self.remat)

    def rematerialize(self, body: tuple[Stmt, ...], candidates: set[str],
                      regions_of: dict[str, set[int]], var_writers: dict[str, int]) -> None:
        """Chooses the recomputed locals and prepends their computation to the regions using them."""
        top_region = {id(s): r.index for r in self.regions if not r.loop_depth for s in r.body}
        scalars = {p.name for p in self.fn.params if isinstance(p.type, ScalarType)}
        kinds = {"thread_id", "global_id", *UNIFORM_INDICES}
        position = {id(s): i for i, s in enumerate(body)}
        for stmt in body:
            if not isinstance(stmt, StoreVar) or id(stmt) not in top_region:
                continue
            name = stmt.var.name
            if name not in candidates or var_writers.get(name) != 1:
                continue
            home = top_region[id(stmt)]
            chain = pure_chain(stmt.value, self.defs, scalars, set(self.remat), kinds)
            if chain is None or min(regions_of[name]) < home:
                continue
            # a local the chain reads must already hold its value there (assigned earlier)
            if all(position.get(id(s), -1) > position[id(self.remat[s.var.name][1])]
                   for s in chain if isinstance(s, LoadVar)):
                self.remat[name] = (chain, stmt, home)
        for region in self.regions:
            prefix: list[Stmt] = []
            done: set[str] = set()
            for name in self.remat:  # program order: a chain's locals come first
                if region.index in regions_of[name] and region.index != self.remat[name][2]:
                    self.remat_into(name, prefix, done)
            if prefix:
                region.body = (*prefix, *region.body)
                self.infos[region.index] = _region_info(region)

    def remat_into(self, name: str, prefix: list[Stmt], done: set[str]) -> None:
        """Appends the statements recomputing local ``name`` (and the locals it reads) to ``prefix``."""
        if name in done:
            return
        chain, store, _ = self.remat[name]
        for s in chain:
            if isinstance(s, LoadVar):
                self.remat_into(s.var.name, prefix, done)
        defined = {r.name for s in prefix if (r := result_of(s)) is not None}
        prefix += [s for s in chain if result_of(s).name not in defined]  # type: ignore[union-attr]
        prefix.append(store)
        done.add(name)

    def narrow(self) -> dict[int, tuple[Guard, list[Stmt]]]:
        """Regions ``if tid < s: ...`` whose work-item loop can skip the work-items that do nothing."""
        axis_of = {"$" + n: c[0].dim for n, (c, _, _) in self.remat.items()
                   if len(c) == 1 and isinstance(c[0], ThreadIndex) and c[0].kind == "thread_id"}
        scalars = {p.name for p in self.fn.params if isinstance(p.type, ScalarType)}
        block_locals = self.cells | self.loop_vars
        guards: dict[int, tuple[Guard, list[Stmt]]] = {}
        for region, info in zip(self.regions, self.infos):
            guard = narrowing_guard(region.body, self.defs, axis_of, set(self.remat))
            if guard is None or info.defs & (set(self.crossing) | set(self.ubuf_values)):
                continue
            chain = pure_chain(guard.bound, self.defs, scalars, block_locals, set(UNIFORM_INDICES))
            if chain is None:
                continue
            region.body = guard.body
            self.infos[region.index] = _region_info(region)
            guards[region.index] = (guard, chain)
        return guards

    # --- the new kernel ---

    def build(self, skeleton: tuple[Stmt, ...]) -> Module:
        fn, names = self.fn, self.names
        top: list[Stmt] = list(self.shared)

        def scratch(stem: str, ty: ScalarType, size: int) -> Value:
            arr = names.value(stem, ArrayType(ty, AddressSpace.SHARED, size))
            top.append(SharedArray(arr))
            return arr

        locals_by_name = {v.name: v for v in fn.locals}
        self.private_arrays = {
            n: scratch("wi.local.", locals_by_name[n].type, SLOTS) for n in sorted(self.private)
        }
        self.value_arrays = {
            n: scratch("wi.value.", v.type, SLOTS)  # type: ignore[arg-type]
            for n, v in sorted(self.crossing.items())
        }
        self.ubufs = {
            n: scratch("wi.uniform.", v.type, 1)  # type: ignore[arg-type]
            for n, v in sorted(self.ubuf_values.items())
        }
        self.cell_arrays = {n: scratch("wi.cell.", locals_by_name[n].type, 1) for n in sorted(self.cells)}
        self.locals_by_name = locals_by_name
        self.done = scratch("wi.done.", BOOL, SLOTS) if self.returns else None

        self.c0, self.c1 = names.value("wi.c", I32), names.value("wi.c", I32)
        top += [Const(self.c0, 0), Const(self.c1, 1)]
        self.bool_true = names.value("wi.true", BOOL)
        top.append(Const(self.bool_true, True))
        self.index_values: dict[tuple[str, int], Value] = {}
        wanted = {("block_dim", d) for d in range(3)}
        for info in self.infos:
            wanted |= info.indices
        for kind, dim in sorted(wanted):
            v = names.value(f"wi.{kind}.", I32)
            top.append(ThreadIndex(v, kind, dim))
            self.index_values[(kind, dim)] = v
        self.axes = [LocalVar(names.fresh(f"wi.t{a}."), I32) for a in "xyz"]
        self.alive = LocalVar(names.fresh("wi.alive."), I32) if self.returns else None

        zeros: dict[ScalarType, Value] = {}
        for n in sorted(self.private):
            ty = locals_by_name[n].type
            if ty not in zeros:
                zeros[ty] = names.value("wi.zero.", ty)
                top.append(Const(zeros[ty], _zero(ty)))
        if self.private or self.done is not None:
            def clear(flat: Value) -> list[Stmt]:
                stmts: list[Stmt] = [
                    Store(self.private_arrays[n], flat, zeros[locals_by_name[n].type])
                    for n in sorted(self.private)
                ]
                if self.done is not None:
                    false = names.value("wi.false", BOOL)
                    stmts += [Const(false, False), Store(self.done, flat, false)]
                return stmts

            top += self.workitem_loop(clear)
        if self.alive is not None:
            bd = [self.index_values[("block_dim", d)] for d in range(3)]
            xy, xyz = names.value("wi.n", I32), names.value("wi.n", I32)
            top += [Binary(xy, "mul", bd[0], bd[1]), Binary(xyz, "mul", xy, bd[2]),
                    StoreVar(self.alive, xyz)]

        self.callees = [self.region_function(r, i) for r, i in zip(self.regions, self.infos)]
        body = top + _Emitter(self).emit(skeleton)
        kernel_locals = [v for v in fn.locals if v.name in self.loop_vars | self.cells] + self.axes
        if self.alive is not None:
            kernel_locals.append(self.alive)
        kernel = Function(fn.name, fn.kind, fn.params, fn.return_type, tuple(kernel_locals),
                          tuple(body), loc=fn.loc)
        functions = [kernel if f.name == fn.name else f for f in self.module.functions
                     if not f.is_kernel or f.name == fn.name]
        functions += [c.fn for c in self.callees]
        return Module(tuple(functions), self.module.structs)

    def workitem_loop(self, make_body: Callable[[Value], list[Stmt]],
                      axes_out: list[Value] | None = None,
                      narrowed: tuple[int, Value, Value] | None = None) -> list[Stmt]:
        """``for z, y, x over the block: body(flat id)`` with x innermost.

        ``narrowed`` = (axis, start, stop) runs that axis over [start, stop) only.
        """
        names = self.names
        bd = [self.index_values[("block_dim", d)] for d in range(3)]
        t = [names.value("wi.t", I32) for _ in range(3)]
        zy, zyx, flat_y, flat = (names.value("wi.f", I32) for _ in range(4))
        inner: list[Stmt] = [LoadVar(t[d], self.axes[d]) for d in range(3)]
        inner += [
            Binary(zy, "mul", t[2], bd[1]), Binary(flat_y, "add", zy, t[1]),
            Binary(zyx, "mul", flat_y, bd[0]), Binary(flat, "add", zyx, t[0]),
        ]
        if axes_out is not None:
            axes_out[:] = t
        inner += make_body(flat)
        bounds = [(self.c0, bd[d]) for d in range(3)]
        if narrowed is not None:
            bounds[narrowed[0]] = narrowed[1:]
        loop: Stmt = ForRange(self.axes[0], *bounds[0], self.c1, tuple(inner))
        loop = ForRange(self.axes[1], *bounds[1], self.c1, (loop,))
        return [ForRange(self.axes[2], *bounds[2], self.c1, (loop,))]

    # --- one region as a func ---

    def region_function(self, region: _RegionStmt, info: _RegionInfo) -> _Callee:
        names = self.names
        params: list[Value] = []
        args: list[tuple[str, _ArgKey]] = []

        def param(v: Value, kind: str, key: _ArgKey) -> Value:
            params.append(v)
            args.append((kind, key))
            return v

        for name in sorted(info.uses):
            if name in self.kernel_values:
                param(self.kernel_values[name], "value", self.kernel_values[name])
        tid = [param(names.value(f"wi.tid{a}.", I32), "axis", d) for d, a in enumerate("xyz")]
        flat = param(names.value("wi.flat.", I32), "flat", None)
        index = {k: param(names.value(f"wi.{k[0]}.", I32), "value", self.index_values[k])
                 for k in sorted(info.indices)}
        exports: dict[str, list[tuple[Value, str]]] = {}
        entry: list[Stmt] = []
        need_c0 = False
        for name in sorted(info.defs):
            if name in self.crossing:
                arr = self.value_arrays[name]
                exports.setdefault(name, []).append((param(arr, "value", arr), "flat"))
            if name in self.ubufs:
                arr = self.ubufs[name]
                exports.setdefault(name, []).append((param(arr, "value", arr), "c0"))
                need_c0 = True
        c0 = names.value("wi.c", I32)
        for name in sorted(info.uses):
            if name in self.crossing:
                arr = param(self.value_arrays[name], "value", self.value_arrays[name])
                entry.append(Load(info.uses[name], arr, flat))
        private = sorted(n for n in info.locals if n in self.private)
        arrays = {n: param(self.private_arrays[n], "value", self.private_arrays[n]) for n in private}
        for n in private:
            v = names.value("wi.l", info.locals[n].type)
            entry += [Load(v, arrays[n], flat), StoreVar(info.locals[n], v)]
        for n in sorted(n for n in info.locals if n in self.loop_vars | self.cells):
            v = param(names.value("wi.var.", info.locals[n].type), "var", info.locals[n])
            entry.append(StoreVar(info.locals[n], v))
        cells = {n: param(self.cell_arrays[n], "value", self.cell_arrays[n])
                 for n in sorted(info.stored & self.cells)}
        need_c0 = need_c0 or bool(cells)
        if need_c0:
            entry.insert(0, Const(c0, 0))
        true = names.value("wi.true", BOOL)
        if info.returns:
            entry.append(Const(true, True))

        rewriter = _RegionRewriter(names, tid, index, exports, flat, c0,
                                   true if info.returns else None)
        body = entry + list(rewriter.rewrite(region.body))
        for n in private:
            if n in info.stored:
                v = names.value("wi.l", info.locals[n].type)
                body += [LoadVar(v, info.locals[n]), Store(arrays[n], flat, v)]
        for n, cell in cells.items():  # every work-item writes the same value
            v = names.value("wi.l", info.locals[n].type)
            body += [LoadVar(v, info.locals[n]), Store(cell, c0, v)]
        if info.returns:
            false = names.value("wi.false", BOOL)
            body += [Const(false, False), Return(false)]
        fn = Function(
            names.fresh(f"{self.fn.name}.wi"), "func", tuple(params),
            BOOL if info.returns else VOID,
            tuple(info.locals[n] for n in sorted(info.locals)), tuple(body), loc=self.fn.loc,
        )
        return _Callee(fn, args)


class _RegionRewriter:
    """A region's statements as a func body: thread indices from parameters, exports stored."""

    def __init__(self, names: _Names, tid: list[Value], index: dict[tuple[str, int], Value],
                 exports: dict[str, list[tuple[Value, str]]], flat: Value, c0: Value,
                 true: Value | None) -> None:
        self.names = names
        self.tid = tid
        self.index = index
        self.exports = exports
        self.flat = flat
        self.c0 = c0
        self.true = true
        self.renamed: dict[str, Value] = {}

    def value(self, v: Value) -> Value:
        return self.renamed.get(v.name, v)

    def rewrite(self, body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for stmt in body:
            if isinstance(stmt, ThreadIndex):
                out += self.thread_index(stmt)
            elif isinstance(stmt, Return):
                assert self.true is not None
                out.append(Return(self.true, loc=stmt.loc))
            else:
                out.append(_map_stmt(stmt, self.value, self.rewrite))
            r = result_of(stmt)
            if r is not None:
                for arr, at in self.exports.get(r.name, ()):
                    out.append(Store(arr, self.flat if at == "flat" else self.c0, self.value(r)))
        return tuple(out)

    def thread_index(self, s: ThreadIndex) -> list[Stmt]:
        if s.kind == "thread_id":
            self.renamed[s.result.name] = self.tid[s.dim]
            return []
        if s.kind != "global_id":
            self.renamed[s.result.name] = self.index[(s.kind, s.dim)]
            return []
        base = self.names.value("wi.g", I32)
        return [
            Binary(base, "mul", self.index[("block_id", s.dim)], self.index[("block_dim", s.dim)],
                   loc=s.loc),
            Binary(s.result, "add", base, self.tid[s.dim], loc=s.loc),
        ]


class _Emitter(NodeVisitor):
    """The block-level skeleton as kernel statements: regions become work-item loops."""

    def __init__(self, t: _Transformer) -> None:
        self.t = t

    def emit(self, body: tuple[Stmt, ...]) -> list[Stmt]:
        out: list[Stmt] = []
        for stmt in body:
            out += self.visit(stmt)
        return out

    def block_value(self, v: Value, out: list[Stmt]) -> Value:
        """``v`` at block level: a parameter, recomputed, or the work-items' copy."""
        t = self.t
        if v.name in t.kernel_values:
            return v
        if v.name in t.block_chains:
            return self.emit_chain(t.block_chains[v.name], out).get(v.name, v)
        fresh = t.names.value("wi.u", v.type)
        const = t.const_defs.get(v.name)
        if const is not None:
            out.append(Const(fresh, const.value))
        else:
            out.append(Load(fresh, t.ubufs[v.name], t.c0))
        return fresh

    def visit__RegionStmt(self, r: _RegionStmt) -> list[Stmt]:
        t = self.t
        callee = t.callees[r.index]
        returns = callee.fn.return_type == BOOL
        axes: list[Value] = []

        def body(flat: Value) -> list[Stmt]:
            stmts: list[Stmt] = []
            if t.done is not None:
                skip = t.names.value("wi.d", BOOL)
                stmts += [Load(skip, t.done, flat), If(skip, (Continue(),))]
            args: list[Value] = []
            for kind, key in callee.args:
                if kind == "value" and isinstance(key, Value):
                    args.append(key)
                elif kind == "axis" and isinstance(key, int):
                    args.append(axes[key])
                elif kind == "flat":
                    args.append(flat)
                else:
                    assert isinstance(key, LocalVar)
                    v = t.names.value("wi.v", key.type)
                    stmts.append(LoadVar(v, key))
                    args.append(v)
            if not returns:
                stmts.append(Call(None, callee.fn.name, tuple(args)))
                return stmts
            assert t.done is not None and t.alive is not None
            ret = t.names.value("wi.r", BOOL)
            left, less = t.names.value("wi.a", I32), t.names.value("wi.a", I32)
            stmts += [
                Call(ret, callee.fn.name, tuple(args)),
                If(ret, (Store(t.done, flat, t.bool_true), LoadVar(left, t.alive),
                         Binary(less, "sub", left, t.c1), StoreVar(t.alive, less))),
            ]
            return stmts

        out: list[Stmt] = []
        narrowed = self.narrowed(r.index, out)
        cells = sorted(t.infos[r.index].stored & t.cells)
        for n in cells:  # the value the region starts from, if no work-item finishes it
            v = t.names.value("wi.u", t.locals_by_name[n].type)
            out += [LoadVar(v, t.locals_by_name[n]), Store(t.cell_arrays[n], t.c0, v)]
        out += t.workitem_loop(body, axes, narrowed)
        for n in cells:
            v = t.names.value("wi.u", t.locals_by_name[n].type)
            out += [Load(v, t.cell_arrays[n], t.c0), StoreVar(t.locals_by_name[n], v)]
        if returns:
            assert t.alive is not None
            left, none = t.names.value("wi.a", I32), t.names.value("wi.e", BOOL)
            out += [LoadVar(left, t.alive), Compare(none, "eq", left, t.c0),
                    If(none, (Return(),))]
        return out

    def emit_chain(self, chain: list[Stmt], out: list[Stmt]) -> dict[str, Value]:
        """Appends a copy of ``chain`` (pure, block-computable) to ``out``; old name -> new value."""
        renamed: dict[str, Value] = {}
        for stmt in chain:
            fresh = self.t.names.value("wi.b", result_of(stmt).type)  # type: ignore[union-attr]
            copy = _map_stmt(stmt, lambda v: renamed.get(v.name, v), lambda b: b)
            out.append(replace(copy, result=fresh))  # type: ignore[type-var]
            renamed[result_of(stmt).name] = fresh  # type: ignore[union-attr]
        return renamed

    def narrowed(self, index: int, out: list[Stmt]) -> tuple[int, Value, Value] | None:
        """(axis, start, stop) of a narrowed region's work-item loop, computed into ``out``."""
        t = self.t
        if index not in t.guards:
            return None
        guard, chain = t.guards[index]
        bound = self.emit_chain(chain, out).get(guard.bound.name, guard.bound)
        block = t.index_values[("block_dim", guard.axis)]
        last, below, start, stop = (t.names.value("wi.b", I32) for _ in range(4))
        out += [Binary(last, "sub", block, t.c1), Binary(below, "min", bound, last)]
        if guard.op == "lt":
            out.append(Binary(stop, "min", bound, block))
        else:  # the last work-item + 1, which cannot overflow
            out.append(Binary(stop, "add", below, t.c1))
        if guard.op == "eq":
            out.append(Binary(start, "max", bound, t.c0))
            return guard.axis, start, stop
        return guard.axis, t.c0, stop

    def visit_If(self, s: If) -> list[Stmt]:
        out: list[Stmt] = []
        cond = self.block_value(s.cond, out)
        out.append(If(cond, tuple(self.emit(s.then_body)), tuple(self.emit(s.else_body)),
                      loc=s.loc))
        return out

    def visit_Loop(self, s: Loop) -> list[Stmt]:
        return [Loop(tuple(self.emit(s.body)), loc=s.loc)]

    def visit_ForRange(self, s: ForRange) -> list[Stmt]:
        out: list[Stmt] = []
        start, stop, step = (self.block_value(v, out) for v in (s.start, s.stop, s.step))
        out.append(ForRange(s.var, start, stop, step, tuple(self.emit(s.body)), loc=s.loc))
        return out

    def visit_Break(self, s: Break) -> list[Stmt]:
        return [s]

    def visit_Continue(self, s: Continue) -> list[Stmt]:
        return [s]
