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
import errno
import importlib
import io
import os
import re
import stat
import sys
import tempfile
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ringkernel.compiler import TARGETS, compile_module
from ringkernel.ringir import Call, Function, Module, walk
from ringkernel.ringir.diagnostics import CompileError, debug_tracebacks

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

SUFFIXES = {".py": "python", ".rir": "ringir"}
_ARCH = re.compile(r"sm_\d+[af]?")

MAX_INPUT_BYTES = {"python": 1 << 20, "ringir": 2 << 20}
"""Input size limits: parsing costs a few hundred bytes of memory per byte of input, so a
1 MiB Python file peaks near 400 MB and a 2 MiB RingIR file near 500 MB; kernel files are kilobytes."""

NESTING_BUG_DEPTH = 64
"""A RecursionError on syntax shallower than this is a compiler bug, not the input's nesting."""


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
    parser.add_argument(
        "--dynamic-shared", metavar="N", type=_elements, dest="dynamic_shared",
        help="elements of each rk.dynamic_shared_array (as launch(..., dynamic_shared=N)); "
        "required for kernels that use one",
    )
    parser.add_argument("--check", action="store_true",
                        help="validate the output with the target's own consumer (ptxas, naga, clang, llvm)")
    parser.add_argument("--list", action="store_true",
                        help="list the kernels and funcs found, with their signatures")
    parser.add_argument("--no-cache", action="store_true", help="do not use the compile cache")
    parser.add_argument(
        "--specialize", metavar="T=TYPE", type=_binding, action="append", default=[],
        help="bind a generic kernel's type variable, e.g. T=f32; repeatable, one per variable",
    )
    parser.add_argument("--version", action="version", version=f"ringc (RingKernel) {__version__}, "
                        f"RingIR text version {TEXT_VERSION}")
    return parser


def _arch(text: str) -> str:
    if not _ARCH.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid architecture '{text}'; expected e.g. sm_80")
    return text


def _binding(text: str) -> tuple[str, str]:
    from ringkernel.ringir import SCALAR_TYPES

    name, sep, ty = text.partition("=")
    name, ty = name.strip(), ty.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"invalid binding '{text}'; expected e.g. T=f32")
    if ty not in SCALAR_TYPES:
        raise argparse.ArgumentTypeError(
            f"invalid type '{ty}' in '{text}'; expected one of {', '.join(SCALAR_TYPES)}"
        )
    return name, ty


def _elements(text: str) -> int:
    try:
        count = int(text.strip())
    except ValueError:
        count = 0
    if count <= 0:
        raise argparse.ArgumentTypeError(f"invalid element count '{text}'; expected a whole number >= 1")
    return count


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
    if args.dynamic_shared is not None:
        options["dynamic_shared"] = args.dynamic_shared
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ringc; returns the exit status (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.target is None and not args.list:
            parser.error("the following arguments are required: --target (or --list)")
        options = target_options(args, parser) if args.target else {}
        names = [name for name, _ in args.specialize]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            parser.error(f"--specialize binds {twice[0]} twice; give each type variable once")
        if Path(args.input).suffix not in SUFFIXES:
            parser.error(f"cannot tell the language of '{args.input}': name it *.py or *.rir")
        check_paths(args, parser)
    except SystemExit as exc:  # argparse: --help/--version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    ringc = Ringc(args, options)
    try:
        return ringc.run(sys.stdout)
    except Failed as exc:
        report(exc.errors, args.input)
        return EXIT_ERROR
    except Exception as exc:  # a compiler bug, not the user's fault: say so, briefly
        error = ringc.nesting_error(exc)
        if error is not None:
            report([error], args.input)
            return EXIT_ERROR
        if debug_tracebacks():
            raise
        print(
            f"ringc: internal compiler error: {type(exc).__name__}: {exc}\n"
            "ringc: this is a bug in RingKernel; set RINGKERNEL_DEBUG=1 to see the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def check_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Flag values that can never work are usage errors (exit 2), found before anything is read."""
    if any(not name for name in args.kernel):
        parser.error("--kernel needs a name")
    if not args.output:
        parser.error("-o needs a file name, or '-' for stdout")
    if args.output != "-" and not args.list and _same_file(args.input, args.output):
        parser.error(f"-o '{args.output}' is the input file; ringc does not overwrite its input")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


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
    list_errors: list[CompileError] = field(default_factory=list)
    scan: Any = None

    def run(self, stdout: TextIO | None) -> int:
        language = SUFFIXES[Path(self.args.input).suffix]
        text = read_input(self.args.input, language)
        if language == "python":
            module = self.python_module(text)
        else:
            module = self.ringir_module(text)
        if self.args.list:  # what translated is listed even when other entries failed
            listing = self.listing if self.listing is not None else [signature(f) for f in module.functions]
            write_stdout("".join(f"{line}\n" for line in listing), stdout)
            if self.list_errors:
                raise Failed(self.list_errors)
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
        import ringkernel
        from ringkernel.frontends.static import ScanContext, scan_source

        context = ScanContext.from_facade(ringkernel)
        scan = self.scan = self.guard(lambda: scan_source(text, self.args.input, context))
        errors: list[CompileError] = list(scan.errors)
        names = self.args.kernel
        missing = [n for n in names if scan.get(n) is None]
        if missing:
            found = ", ".join(e.__name__ for e in scan.definitions) or "none"
            raise Failed([f"no kernel, func or actor named '{n}' (found: {found})" for n in missing])
        messages = [n for n in names if scan.get(n).ringkernel_kind == "message"]
        if messages:
            raise Failed([f"'{n}' is a message; name the actor that handles it" for n in messages])
        structs = [n for n in names if scan.get(n).ringkernel_kind == "struct"]
        if structs:
            raise Failed([f"'{n}' is a struct; name a kernel that uses it" for n in structs])
        compilable = self.specialized(
            [d for d in scan.definitions if d.ringkernel_kind not in ("message", "struct")]
        )
        by_name = {e.__name__: e for e in compilable}
        if names:
            selected = [by_name.get(n, scan.get(n)) for n in dict.fromkeys(names)]
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
            if not names and entry.ringkernel_kind == "func" and _open_variables(entry):
                continue  # a generic func is checked through the kernels that call it
            try:
                modules[entry.__name__] = entry_module(entry, mode)
            except CompileError as exc:
                errors.append(exc)
            except RecursionError as exc:
                error = self.nesting_error(exc, [entry])
                if error is None:
                    raise
                errors.append(error)
        if self.args.list:
            self.listing = [_listing(e, modules.get(e.__name__)) for e in selected
                            if e.ringkernel_kind == "message" or e.__name__ in modules]
            self.list_errors = _unique(errors)
            return Module(())
        if errors:
            raise Failed(_unique(errors))
        if self.args.target == "ptx" and any(e.ringkernel_kind == "actor" for e in selected):
            # as ActorType.compile: the host polls actor queues, so atomics need system scope
            self.options.setdefault("system_scope_atomics", True)
        if len(selected) == 1 and selected[0].__name__ in modules:
            return modules[selected[0].__name__]  # already built: translating twice doubles time and memory
        return self.guard(lambda: combined_module(selected, mode))

    def specialized(self, entries: list[Any]) -> list[Any]:
        """``entries`` with ``--specialize`` bindings applied to the kernels and funcs that use them."""
        from ringkernel.frontends.static import StaticFunction
        from ringkernel.ringir import SCALAR_TYPES

        wanted = {name: SCALAR_TYPES[ty] for name, ty in self.args.specialize}
        if not wanted:
            return entries
        used: set[str] = set()
        out = []
        for entry in entries:
            open_vars = _open_variables(entry) if entry.ringkernel_kind in ("kernel", "func") else []
            bindings = {k: v for k, v in wanted.items() if k in open_vars}
            used |= bindings.keys()
            if bindings:
                from ringkernel.frontends.generics import bound_source

                entry = StaticFunction(entry.ringkernel_kind, bound_source(entry.ringkernel_source, bindings))
            out.append(entry)
        unused = [k for k in wanted if k not in used]
        if unused:
            raise Failed([f"--specialize {unused[0]}=...: no kernel or func in this file has a type "
                          f"variable {unused[0]}"])
        return out

    def nesting_error(self, exc: BaseException, entries: Sequence[Any] | None = None) -> CompileError | None:
        """A RecursionError caused by deeply nested input, as a located error at the deepest statement.

        None when ``exc`` is something else or the input is too shallow to be the cause (a bug).
        """
        if not isinstance(exc, RecursionError) or self.scan is None:
            return None
        deepest = max((self.scan.nesting_error(e) for e in entries or self.scan.definitions),
                      key=lambda found: found[0], default=None)
        if deepest is None or deepest[0] < NESTING_BUG_DEPTH:
            return None
        return deepest[1]

    def ringir_module(self, text: str) -> Module:
        from ringkernel.ringir import parse

        module = self.guard(lambda: parse(text, self.args.input))
        if not self.args.kernel:
            return module
        return select_functions(module, self.args.kernel)


def _open_variables(entry: Any) -> list[str]:
    """The type variables a kernel or func leaves open (none when its signature cannot be read)."""
    from ringkernel.frontends.generics import type_variables

    try:
        return type_variables(entry.ringkernel_source)
    except CompileError:
        return []


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


def read_input(path: str, language: str) -> str:
    """The input's text: Python files honour their coding cookie; RingIR is UTF-8.

    Only a regular file of at most :data:`MAX_INPUT_BYTES` is read: a FIFO or a
    device would block or never end, and a huge file would exhaust memory in the parser.
    """
    limit = MAX_INPUT_BYTES[language]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise Failed([f"cannot read '{path}': it is {_file_kind(info.st_mode)}, not a regular file"])
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(limit + 1) if info.st_size <= limit else b""
    except OSError as exc:
        raise Failed([f"cannot read '{path}': {exc.strerror or exc}"]) from None
    if info.st_size > limit or len(data) > limit:
        size = max(info.st_size, len(data))
        raise Failed([f"the file is too large for ringc ({size / (1 << 20):.1f} MiB; the limit for "
                      f"{'Python' if language == 'python' else 'RingIR'} input is {limit >> 20} MiB)"])
    if language == "python":
        return decode_python(data, path)
    return _decode(data, "utf-8", path).replace("\r\n", "\n")


def decode_python(data: bytes, path: str) -> str:
    """Python source bytes as text, as the interpreter reads them (coding cookie, BOM, newlines).

    Every failure is a located CompileError: an unknown cookie, a codec that is not a text
    encoding (``rot13``, ``zlib``) or that fails on the bytes (``punycode``), invalid bytes.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # an unknown cookie, one that contradicts a BOM, or invalid UTF-8
        if _cookie_line(data) is None:
            _decode(data, "utf-8", path)  # no cookie: the bytes are not UTF-8; say where
        raise Failed([_cookie_error(data, path, str(exc.msg or exc))]) from None
    try:
        text = _decode(data, encoding, path)
    except LookupError:
        raise Failed([_cookie_error(data, path, f"'{encoding}' is not a text encoding")]) from None
    except ValueError:  # a codec that fails its own way (punycode)
        raise Failed([_cookie_error(data, path, f"the '{encoding}' codec cannot decode it")]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, encoding: str, path: str) -> str:
    """``data.decode(encoding)``, with bytes invalid in the encoding reported at their line and column."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise Failed([CompileError(f"the file is not valid text: {exc.reason} "
                                   f"(byte 0x{data[exc.start]:02x} in {encoding})",
                                   filename=path, line=line, col=col, source_line="")]) from None


_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=]")


def _cookie_line(data: bytes) -> int | None:
    """The line (1 or 2) of the file's coding cookie, if it has one."""
    lines = data.split(b"\n", 2)[:2]
    return next((n for n, text in enumerate(lines, 1) if _COOKIE.match(text)), None)


def _cookie_error(data: bytes, path: str, message: str) -> CompileError:
    """An encoding problem, at the coding cookie if there is one."""
    line = _cookie_line(data)
    source = ""
    if line is not None:
        source = data.split(b"\n", 2)[line - 1].decode("utf-8", errors="replace").rstrip("\r")
    return CompileError(f"cannot read the file: {message}", filename=path, line=line or 1, col=1,
                        source_line=source)


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def write_output(text: str, path: str, stdout: TextIO | None) -> None:
    """Writes to stdout, to a stream (``/dev/stdout``, a FIFO), or atomically to a regular file.

    A regular file is replaced with ``os.replace`` (a failed run never leaves half a file) and
    gets the mode ``open()`` would give it: an existing file's own, else 0666 minus the umask.
    A symlink is followed, as ``open()`` does, so the file it points to is replaced, not the link.
    Directories, sockets and block devices are refused, never replaced.
    """
    if path == "-":
        write_stdout(text, stdout)
        return
    data = text.encode("utf-8")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None  # a new file (or a dangling symlink, whose target open() would create)
    except OSError as exc:
        raise Failed([f"cannot write '{path}': {exc.strerror or exc}"]) from None
    if info is not None and (stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        write_stream(data, path)
    elif info is not None and not stat.S_ISREG(info.st_mode):
        raise Failed([f"cannot write '{path}': it is {_file_kind(info.st_mode)}, not a regular file"])
    else:
        mode = stat.S_IMODE(info.st_mode) & 0o777 if info is not None else 0o666 & ~_umask()
        replace_file(data, Path(os.path.realpath(path)), mode, path)


def write_stdout(text: str, stdout: TextIO | None) -> None:
    """Writes to stdout; a closed, full or broken stdout is the user's error (exit 1), not a crash."""
    if stdout is None:
        raise Failed(["cannot write the output: stdout is closed (use -o FILE)"])
    try:
        stdout.write(text)
        stdout.flush()
    except (OSError, ValueError) as exc:  # ValueError: writing to a closed file object
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise Failed([f"cannot write to stdout: {reason}"]) from None


def write_stream(data: bytes, path: str) -> None:
    """Writes to a character device or FIFO in place; a FIFO nobody reads is an error, not a hang."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        reason = "no process is reading the FIFO" if exc.errno == errno.ENXIO else exc.strerror or exc
        raise Failed([f"cannot write '{path}': {reason}"]) from None
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise Failed([f"cannot write '{path}': {exc.strerror or exc}"]) from None


def replace_file(data: bytes, target: Path, mode: int, shown: str) -> None:
    """Writes a temporary file next to ``target`` with ``mode``, then moves it over ``target``."""
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise Failed([f"cannot write '{shown}': {exc.strerror or exc}"]) from None
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


def _umask() -> int:
    """The process umask (reading it means setting it; ringc is single-threaded here)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
