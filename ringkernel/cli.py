"""``ringc``: compile the kernels of a Python file (or a RingIR file) from the command line.

    ringc kernels.py --target ptx -o kernels.ptx
    ringc kernels.py --target wgsl --kernel saxpy --check
    ringc module.rir --target msl
    ringc kernels.py --list

ringc never imports or executes a ``.py`` input: it reads it with ``ast``
(``ringkernel.frontends.static``), so it is safe on untrusted files.  All
selected kernels go into one output module.  Diagnostics go to stderr as
``file:line:col: error: message`` with the source line and a caret.

Exit status: 0 success; 1 compile error, validation error or unreadable
input/output file; 2 usage error; 3 internal compiler error (a bug: please
report it; ``RINGKERNEL_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ringkernel.compiler import TARGETS, compile_module
from ringkernel.ringir import Call, Function, Module, walk
from ringkernel.ringir.diagnostics import CompileError, debug_tracebacks

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

SUFFIXES = {".py": "python", ".rir": "ringir"}
_ARCH = re.compile(r"sm_\d+[af]?")


class Failed(Exception):
    """Stops the run after its diagnostics were collected; carries them to ``main``."""

    def __init__(self, errors: Sequence[CompileError | str]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = list(errors)


# --- the command line ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from ringkernel.ringir import TEXT_VERSION
    from ringkernel.ringir.version import __version__

    parser = argparse.ArgumentParser(
        prog="ringc",
        description="Compile the @rk.kernel functions of a Python file (read with ast, never run) "
        "or a RingIR .rir file to PTX, WGSL, MSL, LLVM IR or RingIR text.",
        epilog="exit status: 0 success, 1 compile/validation error, 2 usage error, 3 internal error",
    )
    parser.add_argument("input", metavar="FILE", help="a .py file with @rk.kernel functions, or a .rir file")
    parser.add_argument("-t", "--target", choices=TARGETS, help="output language (required unless --list)")
    parser.add_argument("-o", "--output", metavar="OUT", default="-",
                        help="output file ('-': stdout, the default)")
    parser.add_argument(
        "-k", "--kernel", metavar="NAME", action="append", default=[],
        help="compile only this kernel (or func) and what it calls; repeatable",
    )
    parser.add_argument("--arch", type=_arch, help="CUDA architecture for ptx (default sm_80); with "
                        "--target llvm it selects NVPTX LLVM IR instead of the host's")
    parser.add_argument("--block", type=_block, help="WGSL workgroup size, e.g. 256 or 16,16 (default 64)")
    parser.add_argument("--fastmath", action="store_true", help="fast math (ptx, msl, llvm with --arch)")
    parser.add_argument("--check", action="store_true",
                        help="validate the output with the target's own consumer (ptxas, naga, clang, llvm)")
    parser.add_argument("--list", action="store_true",
                        help="list the kernels and funcs found, with their signatures")
    parser.add_argument("--no-cache", action="store_true", help="do not use the compile cache")
    parser.add_argument("--version", action="version", version=f"ringc (RingKernel) {__version__}, "
                        f"RingIR text version {TEXT_VERSION}")
    return parser


def _arch(text: str) -> str:
    if not _ARCH.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid architecture '{text}'; expected e.g. sm_80")
    return text


def _block(text: str) -> tuple[int, ...]:
    parts = re.split(r"[,x]", text.strip())
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not 1 <= len(dims) <= 3 or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"invalid block size '{text}'; expected e.g. 256 or 16,16")
    return dims


def target_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The emitter options the flags ask for; flags that make no sense for the target are usage errors."""
    target = args.target
    options: dict[str, Any] = {}
    if args.arch is not None:
        if target not in ("ptx", "llvm"):
            parser.error(f"--arch applies to --target ptx or llvm, not {target}")
        options["arch"] = args.arch
        if target == "llvm":
            options["triple"] = "nvptx"
    if args.block is not None:
        if target != "wgsl":
            parser.error(f"--block applies to --target wgsl, not {target}")
        options["block"] = args.block
    if args.fastmath:
        if target == "ptx" or (target == "llvm" and args.arch is not None):
            options["fastmath"] = True
        elif target == "msl":
            options["math"] = "fast"
        else:
            parser.error("--fastmath applies to --target ptx, msl, or llvm with --arch")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ringc; returns the exit status (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.target is None and not args.list:
            parser.error("the following arguments are required: --target (or --list)")
        options = target_options(args, parser) if args.target else {}
        if Path(args.input).suffix not in SUFFIXES:
            parser.error(f"cannot tell the language of '{args.input}': name it *.py or *.rir")
    except SystemExit as exc:  # argparse: --help/--version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return Ringc(args, options).run(sys.stdout)
    except Failed as exc:
        report(exc.errors, args.input)
        return EXIT_ERROR
    except RecursionError:
        report(["the input is nested too deeply for ringc to compile"], args.input)
        return EXIT_ERROR
    except Exception as exc:  # a compiler bug, not the user's fault: say so, briefly
        if debug_tracebacks():
            raise
        print(
            f"ringc: internal compiler error: {type(exc).__name__}: {exc}\n"
            "ringc: this is a bug in RingKernel; set RINGKERNEL_DEBUG=1 to see the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def report(errors: Sequence[CompileError | str], filename: str, stream: TextIO | None = None) -> None:
    """Prints each diagnostic (errors without a place are attributed to the input file)."""
    stream = stream or sys.stderr
    for error in errors:
        text = str(error)
        if isinstance(error, str):
            text = f"{filename}: error: {error}"
        elif not error.filename and error.line is None:
            text = f"{filename}: {text}"
        print(text, file=stream)
    if len(errors) > 1:
        print(f"{len(errors)} errors generated.", file=stream)


# --- one run --------------------------------------------------------------------------------


@dataclass
class Ringc:
    """One invocation: read the input, pick the entries, compile, check, write."""

    args: argparse.Namespace
    options: dict[str, Any]
    listing: list[str] | None = None

    def run(self, stdout: TextIO) -> int:
        text = read_input(self.args.input)
        if SUFFIXES[Path(self.args.input).suffix] == "python":
            module = self.python_module(text)
        else:
            module = self.ringir_module(text)
        if self.args.list:
            listing = self.listing if self.listing is not None else [signature(f) for f in module.functions]
            stdout.write("".join(f"{line}\n" for line in listing))
            return EXIT_OK
        output = self.guard(lambda: compile_module(module, self.args.target, cache=not self.args.no_cache,
                                                   **self.options))
        if self.args.check:
            self.guard(lambda: check_output(output, self.args.target, self.options, self.args.output))
        write_output(output, self.args.output, stdout)
        return EXIT_OK

    def guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except CompileError as exc:
            raise Failed([exc]) from None

    def python_module(self, text: str) -> Module:
        """Translates the file's entries one by one (collecting every error), then together."""
        from ringkernel.frontends.static import scan_source

        scan = self.guard(lambda: scan_source(text, self.args.input))
        errors: list[CompileError] = list(scan.errors)
        names = self.args.kernel
        missing = [n for n in names if scan.get(n) is None]
        if missing:
            found = ", ".join(e.__name__ for e in scan.definitions) or "none"
            raise Failed([f"no kernel, func or actor named '{n}' (found: {found})" for n in missing])
        messages = [n for n in names if scan.get(n).ringkernel_kind == "message"]
        if messages:
            raise Failed([f"'{n}' is a message; name the actor that handles it" for n in messages])
        compilable = [d for d in scan.definitions if d.ringkernel_kind != "message"]
        if names:
            selected = [scan.get(n) for n in dict.fromkeys(names)]
        elif self.args.list:
            selected = list(scan.definitions)
        else:
            selected = [e for e in compilable if e.ringkernel_kind in ("kernel", "actor")]
            if not selected and not errors:
                raise Failed(["no @rk.kernel functions or @rk.actor classes found "
                              "(ringc reads only top-level definitions)"])
        mode = "batch" if self.args.target in ("wgsl", "msl") else "persistent"
        modules: dict[str, Module] = {}
        for entry in selected if names else compilable:
            try:
                modules[entry.__name__] = entry_module(entry, mode)
            except CompileError as exc:
                errors.append(exc)
        if errors:
            raise Failed(_unique(errors))
        if self.args.list:
            self.listing = [_listing(e, modules.get(e.__name__)) for e in selected]
            return Module(())
        if self.args.target == "ptx" and any(e.ringkernel_kind == "actor" for e in selected):
            # as ActorType.compile: the host polls actor queues, so atomics need system scope
            self.options.setdefault("system_scope_atomics", True)
        return self.guard(lambda: combined_module(selected, mode))

    def ringir_module(self, text: str) -> Module:
        from ringkernel.ringir import parse

        module = self.guard(lambda: parse(text, self.args.input))
        if not self.args.kernel:
            return module
        return select_functions(module, self.args.kernel)


def entry_module(entry: Any, mode: str) -> Module:
    """The verified module of one kernel/func (with callees) or one actor (lowered for ``mode``)."""
    from ringkernel.frontends.module import build_module

    if entry.ringkernel_kind == "actor":
        return entry.module(mode)
    return build_module([entry])


def combined_module(entries: Sequence[Any], mode: str) -> Module:
    """One module for every selected entry: kernels/funcs built together, actors merged in."""
    from ringkernel.frontends.module import build_module

    functions = [e for e in entries if e.ringkernel_kind in ("kernel", "func")]
    parts = [build_module(functions)] if functions else []
    parts += [e.module(mode) for e in entries if e.ringkernel_kind == "actor"]
    return merge_modules(parts)


def merge_modules(parts: Sequence[Module]) -> Module:
    """The union of ``parts``: a function or struct they share appears once; a clash is an error."""
    functions: dict[str, Function] = {}
    structs: dict[str, Any] = {}
    for part in parts:
        for fn in part.functions:
            if functions.setdefault(fn.name, fn) != fn:
                raise CompileError(f"two different functions are named '{fn.name}'; rename one of them")
        for struct in part.structs:
            if structs.setdefault(struct.name, struct) != struct:
                raise CompileError(f"two different types are named '{struct.name}'; rename one of them")
    return Module(tuple(functions.values()), tuple(structs.values()))


def _listing(entry: Any, module: Module | None) -> str:
    if entry.ringkernel_kind == "message":
        return f"message {entry.__name__}({entry.fields()})"
    assert module is not None
    line = signature(module.get(entry.__name__))
    if entry.ringkernel_kind == "actor":
        handled = ", ".join(h.message.name for h in entry.info.handlers.values())
        return f"actor {line.removeprefix('kernel ')}  # handles {handled}"
    return line


def select_functions(module: Module, names: Sequence[str]) -> Module:
    """The named functions and everything they call, in the module's order."""
    by_name = {fn.name: fn for fn in module.functions}
    missing = [n for n in names if n not in by_name]
    if missing:
        found = ", ".join(by_name) or "none"
        raise Failed([f"no function named '{n}' in the module (found: {found})" for n in missing])
    keep: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in keep or name not in by_name:
            continue  # a call to a missing function is the verifier's to report
        keep.add(name)
        stack.extend(s.callee for s in walk(by_name[name].body) if isinstance(s, Call))
    return Module(tuple(fn for fn in module.functions if fn.name in keep), module.structs)


def signature(fn: Function) -> str:
    params = ", ".join(f"{p.name}: {p.type}" for p in fn.params)
    ret = "" if fn.is_kernel or str(fn.return_type) == "void" else f" -> {fn.return_type}"
    return f"{fn.kind} {fn.name}({params}){ret}"


def _unique(errors: list[CompileError]) -> list[CompileError]:
    """Each diagnostic once (a func's error shows up again in every kernel calling it), in file order."""
    seen: dict[str, CompileError] = {}
    for error in errors:
        seen.setdefault(str(error), error)
    return sorted(seen.values(), key=lambda e: (e.line or 0, e.col or 0))


# --- files ----------------------------------------------------------------------------------


def read_input(path: str) -> str:
    """The input's text: Python files honour their coding cookie; RingIR is UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise Failed([f"cannot read '{path}': {exc.strerror or exc}"]) from None
    try:
        if path.endswith(".py"):
            return importlib.util.decode_source(data)
        return data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise Failed([CompileError(f"the file is not valid text: {exc.reason} (byte 0x{data[exc.start]:02x})",
                                   filename=path, line=line, col=col, source_line="")]) from None
    except SyntaxError as exc:  # an unknown coding cookie
        error = CompileError(f"cannot read the file: {exc.msg}", filename=path, line=exc.lineno)
        raise Failed([error]) from None


def write_output(text: str, path: str, stdout: TextIO) -> None:
    """Writes to stdout, or atomically to ``path`` (a failed run never leaves half a file)."""
    if path == "-":
        stdout.write(text)
        stdout.flush()
        return
    target = Path(path)
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise Failed([f"cannot write '{path}': {exc.strerror or exc}"]) from None
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


# --- --check --------------------------------------------------------------------------------


def check_output(text: str, target: str, options: dict[str, Any], output: str) -> None:
    """Hands ``text`` to the target's real consumer; its complaint becomes a CompileError."""
    label = f"<{target}>" if output == "-" else output
    if target == "rir":
        from ringkernel.ringir import parse

        if str(parse(text, label)) != text:
            raise CompileError("the RingIR text does not print back identically after parsing")
        return
    if target == "llvm":
        check_llvm(text)
        return
    checker = _checker(target)
    if target == "ptx":
        checker(text, options.get("arch", "sm_80"))
    elif target == "wgsl":
        try:
            checker(text, label)
        except RuntimeError as exc:  # WgpuUnavailable: naga only runs inside a wgpu device
            if isinstance(exc, CompileError):
                raise
            raise CompileError(f"cannot check WGSL here: {exc}") from None
    else:
        checker(text)


_CHECKERS = {
    "ptx": ("ringkernel.lowering.cuda", "check_ptx"),
    "wgsl": ("ringkernel.lowering.wgsl", "check_wgsl"),
    "msl": ("ringkernel.lowering.msl", "check_msl"),
}


def _checker(target: str) -> Callable[..., None]:
    module_name, func_name = _CHECKERS[target]
    try:
        return getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError):
        raise CompileError(f"--check for target '{target}' is not available in this build") from None


def check_llvm(text: str) -> None:
    """llvmlite parses and verifies the module, as the JIT and the NVPTX backend would."""
    import llvmlite.binding as llvm

    from ringkernel.lowering.llvm.codegen import init_llvm

    init_llvm()
    try:
        llvm.parse_assembly(text).verify()
    except RuntimeError as exc:
        raise CompileError(f"LLVM rejected the IR: {str(exc).strip()}") from None


if __name__ == "__main__":
    sys.exit(main())
