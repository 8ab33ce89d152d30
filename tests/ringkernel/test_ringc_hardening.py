"""ringc on hostile or odd input: it imports nothing, writes only what it should, and
reports every user error as a located error with exit status 1 (never 3, never a hang).

Most tests run ``ringkernel.cli.main`` in-process; the FIFO tests bound their time
with a reader thread or O_NONBLOCK so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import resource
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ringkernel.cli as cli
from ringkernel.cli import main
from ringkernel.ringir.diagnostics import CompileError

KERNEL = """\
import ringkernel as rk
from ringkernel import Array, f32

@rk.kernel
def k(x: Array[f32]):
    x[rk.global_id(0)] = 1.0
"""


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def assert_user_error(code: int, err: str, where: str) -> None:
    assert code == 1, err
    assert where in err, err
    assert "internal compiler error" not in err and "Traceback" not in err


# --- 1. ringc imports nothing on the input's behalf ----------------------------------------


def run_isolated(*argv: object, memory_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """ringc in a fresh interpreter, bounded in time (and memory), printing what it imported.

    A regression here would run another program's ``main`` or parse gigabytes, so it must
    not run inside the test process.
    """
    driver = textwrap.dedent("""\
        import json, sys
        before = set(sys.modules)
        from ringkernel.cli import main
        code = main(sys.argv[1:])
        print("\\nMODULES " + json.dumps(sorted(set(sys.modules) - before)))
        sys.exit(code)
        """)

    def limit() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run([sys.executable, "-c", driver, *map(str, argv)], capture_output=True, text=True,
                          timeout=300, preexec_fn=limit, stdin=subprocess.DEVNULL)


def imported(result: subprocess.CompletedProcess[str]) -> list[str]:
    line = result.stdout.rpartition("\nMODULES ")[2]
    return json.loads(line) if line.startswith("[") else ["<ringc did not finish>"]


def test_imports_named_by_the_input_are_never_run(tmp_path):
    marker = tmp_path / "IMPORTED"
    (tmp_path / "sidefx.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\nLIMIT = 4\n")
    src = write(tmp_path, "k.py", """\
        import sidefx
        import sidefx as fx
        from sidefx import LIMIT
        from ringkernel import __main__
        from numpy.f2py import __main__ as f2py_main
        import numpy.f2py.__main__
        import numpy as np
        import ringkernel as rk
        from ringkernel import Array, f32

        TESTING = np.testing

        @rk.kernel
        def k(x: Array[f32]):
            x[rk.global_id(0)] = np.float32(1.0)
        """)
    out = tmp_path / "k.rir"
    result = run_isolated(src, "-t", "rir", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "@k" in out.read_text()
    assert not marker.exists()
    foreign = [m for m in imported(result) if not m.startswith("ringkernel.") or "__main__" in m]
    assert "sidefx" not in foreign and not [m for m in foreign if "f2py" in m or "__main__" in m], foreign


def _new_foreign_modules(before: set[str]) -> set[str]:
    """Modules imported since ``before``, but for ringc's own (it imports its frontend lazily)."""
    return {m for m in set(sys.modules) - before if not m.startswith("ringkernel.") or "__main__" in m}


def test_kernel_attribute_chains_import_nothing(capsys, tmp_path):
    before = set(sys.modules)
    src = write(tmp_path, "k.py", KERNEL.replace("= 1.0", "= np.f2py.x") + "import numpy as np\n")
    code, _, err = run(capsys, src, "-t", "rir")
    assert_user_error(code, err, f"{src}:6:")
    assert _new_foreign_modules(before) == set()


def test_static_path_never_evaluates_text(capsys, tmp_path, monkeypatch):
    """String annotations are parsed with ast, never handed to eval/exec."""

    def refuse(*args, **kwargs):
        raise AssertionError("ringc called eval/exec")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    src = write(tmp_path, "k.py", """\
        import ringkernel as rk
        from ringkernel import Array, f32

        @rk.message
        class M:
            value: "f32"

        @rk.actor
        class A:
            total: "f32" = 0.0

            def add(self, msg: "M") -> None:
                self.total += msg.value

        @rk.kernel
        def k(x: "Array[f32]", y: "__import__('os').getcwd()"):
            x[rk.global_id(0)] = 1.0
        """)
    code, out, err = run(capsys, src, "--list")
    assert "message M(value: f32)" in out and "actor A(" in out
    assert_user_error(code, err, f"{src}:16:")


# --- 2. -o: ordinary file semantics, never replacing special files --------------------------


@pytest.fixture
def kernel(tmp_path: Path) -> Path:
    return write(tmp_path, "k.py", KERNEL)


def test_new_output_file_gets_the_umask_mode(capsys, kernel, tmp_path):
    out = tmp_path / "new.ptx"
    old = os.umask(0o027)
    try:
        assert run(capsys, kernel, "-t", "ptx", "-o", out)[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_existing_output_file_keeps_its_mode(capsys, kernel, tmp_path):
    out = tmp_path / "old.ptx"
    out.write_text("old")
    out.chmod(0o664)
    assert run(capsys, kernel, "-t", "ptx", "-o", out)[0] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o664 and ".entry k" in out.read_text()


def test_output_symlink_is_followed_not_replaced(capsys, kernel, tmp_path):
    real = tmp_path / "real.ptx"
    real.write_text("old")
    link = tmp_path / "link.ptx"
    link.symlink_to(real.name)
    assert run(capsys, kernel, "-t", "ptx", "-o", link)[0] == 0
    assert link.is_symlink() and ".entry k" in real.read_text()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_output_fifo_without_reader_is_an_error_not_a_hang(capsys, kernel, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    code, _, err = run(capsys, kernel, "-t", "ptx", "-o", fifo)
    assert_user_error(code, err, "no process is reading the FIFO")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_output_fifo_with_reader_is_written_as_a_stream(capsys, kernel, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the output (a few KB) waits in the pipe
    try:
        assert run(capsys, kernel, "-t", "ptx", "-o", fifo)[0] == 0
        assert b".entry k" in os.read(reader, 1 << 20)
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mknod needs root")
def test_output_character_device_is_written_not_replaced(capsys, kernel, tmp_path):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert run(capsys, kernel, "-t", "ptx", "-o", null)[0] == 0
    assert stat.S_ISCHR(null.lstat().st_mode)


def test_output_socket_and_directory_are_refused(capsys, kernel, tmp_path):
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        code, _, err = run(capsys, kernel, "-t", "ptx", "-o", sock_path)
    assert_user_error(code, err, "it is a socket, not a regular file")
    assert stat.S_ISSOCK(sock_path.lstat().st_mode)
    code, _, err = run(capsys, kernel, "-t", "ptx", "-o", tmp_path)
    assert_user_error(code, err, "cannot write")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-o", ""], "-o needs a file name"),
        (["--kernel", ""], "--kernel needs a name"),
    ],
)
def test_empty_flag_values_are_usage_errors(capsys, kernel, argv, message):
    code, out, err = run(capsys, kernel, "-t", "ptx", *argv)
    assert code == 2 and out == "" and message in err


def test_output_that_is_the_input_is_refused(capsys, kernel, tmp_path):
    link = tmp_path / "alias.py"
    link.symlink_to(kernel.name)
    for out in (kernel, link):
        code, _, err = run(capsys, kernel, "-t", "ptx", "-o", out)
        assert code == 2 and "is the input file" in err
    assert kernel.read_text() == KERNEL


# --- 3. user errors are exit 1 with a place -------------------------------------------------


@pytest.mark.parametrize("encoding", ["foo", "rot13", "zlib", "hex", "punycode"])
def test_odd_coding_cookies(capsys, tmp_path, encoding):
    src = tmp_path / "k.py"
    src.write_text(f"# -*- coding: {encoding} -*-\n" + KERNEL)
    code, _, err = run(capsys, src, "-t", "ptx")
    assert_user_error(code, err, f"{src}:1:1: error: cannot read the file")


@pytest.mark.parametrize("field", ["__slots__", "__qualname__", "__class__", "__dict__", "__module__", "__x"])
def test_reserved_field_names(capsys, tmp_path, field):
    src = write(tmp_path, "m.py", f"""\
        import ringkernel as rk
        from ringkernel import f32

        @rk.message
        class M:
            {field}: f32 = 1.0

        @rk.actor
        class A:
            {field}: f32 = 0.0

            def add(self, msg: M) -> None:
                pass
        """)
    code, _, err = run(capsys, src, "-t", "rir")
    expected = f"{src}:6:5: error: message field '{field}' of 'M': names starting with '__' are reserved"
    assert_user_error(code, err, expected)


def test_any_compile_error_in_the_pipeline_is_exit_1(capsys, kernel, monkeypatch):
    def limit(*args, **kwargs):
        raise CompileError("shared memory too large")

    monkeypatch.setattr(cli, "compile_module", limit)
    code, _, err = run(capsys, kernel, "-t", "ptx")
    assert_user_error(code, err, f"{kernel}: error: shared memory too large")


@pytest.mark.parametrize("target", ["ptx", "wgsl", "msl", "llvm", "rir"])
def test_huge_shared_array_is_a_user_error(capsys, tmp_path, target):
    src = write(tmp_path, "k.py", KERNEL.replace("x[rk.global_id(0)] = 1.0",
                                                 "s = rk.shared_array(f32, 10**20)\n    x[0] = s[0]"))
    code, _, err = run(capsys, src, "-t", target)
    assert_user_error(code, err, f"{src}:6:")


HEADER = "import ringkernel as rk\nfrom ringkernel import Array, f32\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (HEADER + "X = " + "-" * 50_000 + "1\n", 3),  # the parser's own stack
        (HEADER + "X = " + "+".join(["1"] * 5_000) + "\n", 3),  # ast construction
        (HEADER + "X = " + "+".join(["1"] * 900) + "\n", 3),  # ringc's constant evaluator
        (HEADER + "@rk.kernel\ndef k(x: Array[f32]):\n    x[0] = " + "+".join(["x[1]"] * 600) + "\n", 5),
        (HEADER + "@rk.kernel\ndef k(x: Array[f32]):\n    x[0] = "
         + " if x[1] > 0.0 else ".join(["x[2]"] * 400) + "\n", 5),
    ],
    ids=["unary-parser", "binop-parser", "constant", "kernel-binop", "kernel-ifexp"],
)
def test_deep_nesting_is_a_located_error(capsys, tmp_path, text, line):
    src = tmp_path / "deep.py"
    src.write_text(text)
    code, _, err = run(capsys, src, "-t", "ptx")
    assert_user_error(code, err, f"{src}:{line}:")
    assert "nested too deeply" in err


def test_oversized_input_is_refused_before_parsing(tmp_path):
    src = tmp_path / "huge.py"
    with src.open("wb") as f:
        f.write(KERNEL.encode() + b"X = [" + b"1, " * (16 << 20) + b"]\n")  # 50 MB: gigabytes to parse
    result = run_isolated(src, "-t", "ptx", memory_limit=3 << 30)
    assert_user_error(result.returncode, result.stderr,
                      "too large for ringc (48.0 MiB; the limit for Python input is 1 MiB)")


def test_oversized_ringir_input_is_refused(capsys, tmp_path):
    src = tmp_path / "huge.rir"
    with src.open("wb") as f:
        f.write(b"ringir 1\n")
        f.truncate(3 << 20)
    code, _, err = run(capsys, src, "-t", "ptx")
    assert_user_error(code, err, "too large for ringc (3.0 MiB; the limit for RingIR input is 2 MiB)")


# --- 4. --list lists what translates --------------------------------------------------------


def test_list_prints_what_translates_and_reports_the_rest(capsys, tmp_path):
    src = write(tmp_path, "two.py", """\
        import ringkernel as rk
        from ringkernel import Array, f32

        @rk.kernel
        def good(x: Array[f32]):
            x[0] = 1.0

        @rk.kernel
        def bad(x: Array[f32]):
            x[0] = "s"
        """)
    code, out, err = run(capsys, src, "--list")
    assert out == "kernel good(x: array<f32, global>)\n"
    assert_user_error(code, err, f"{src}:10:12: error: strings are not supported")


# --- 6. odd inputs --------------------------------------------------------------------------


def test_directory_input(capsys, tmp_path):
    (tmp_path / "dir.py").mkdir()
    code, _, err = run(capsys, tmp_path / "dir.py", "-t", "ptx")
    assert_user_error(code, err, "it is a directory, not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_input_is_refused_not_waited_on(capsys, tmp_path):
    fifo = tmp_path / "k.py"
    os.mkfifo(fifo)
    code, _, err = run(capsys, fifo, "-t", "ptx")
    assert_user_error(code, err, "it is a FIFO, not a regular file")


def test_symlink_loop_input(capsys, tmp_path):
    (tmp_path / "a.py").symlink_to("b.py")
    (tmp_path / "b.py").symlink_to("a.py")
    code, _, err = run(capsys, tmp_path / "a.py", "-t", "ptx")
    assert_user_error(code, err, "cannot read")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\xd0\xff\n", ":1:"),  # a binary
        (b"import ringkernel as rk\nx = 1\ny = '\xe9'\n", ":3:6:"),  # latin-1 without a cookie
        (b"\xef\xbb\xbf# coding: latin-1\nx = 1\n", ":1:"),  # a BOM contradicting the cookie
    ],
    ids=["binary", "not-utf8", "bom-vs-cookie"],
)
def test_undecodable_inputs_are_located(capsys, tmp_path, data, where):
    src = tmp_path / "k.py"
    src.write_bytes(data)
    code, _, err = run(capsys, src, "-t", "ptx")
    assert_user_error(code, err, f"{src}{where}")


class _FullStream:
    """A stdout on a full disk (``> /dev/full``)."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("flag", ["-t", "--list"])
@pytest.mark.parametrize(("stdout", "message"), [
    (None, "stdout is closed"),
    (_FullStream(), "cannot write to stdout: No space left on device"),
], ids=["closed", "full"])
def test_unwritable_stdout_is_a_user_error(capsys, kernel, monkeypatch, flag, stdout, message):
    monkeypatch.setattr(sys, "stdout", stdout)
    argv = ["-t", "rir"] if flag == "-t" else ["--list"]
    code = main([str(kernel), *argv])
    assert_user_error(code, capsys.readouterr().err, message)
