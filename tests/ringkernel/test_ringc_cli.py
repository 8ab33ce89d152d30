"""ringc end to end: every flag, every target, diagnostics and exit codes, run in-process.

``ringkernel.cli.main(argv)`` returns the exit status, so most tests call it
directly; one test runs the installed ``ringc`` script and ``python -m ringkernel``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ringkernel.cli import main
from ringkernel.ringir import parse

KERNELS = textwrap.dedent(
    """\
    import math
    import ringkernel as rk
    from ringkernel import Array, f32, i32

    N = 256
    SCALE = 2.0 * N

    @rk.func
    def scaled(v: f32) -> f32:
        return v * SCALE + math.sqrt(v)

    @rk.kernel
    def saxpy(a: f32, x: Array[f32], y: Array[f32], n: i32):
        i = rk.global_id(0)
        if i < n:
            y[i] = a * x[i] + y[i]

    @rk.kernel
    def scale(x: Array[f32], n: i32):
        i = rk.global_id(0)
        if i < N and i < n:
            x[i] = scaled(x[i])
    """
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def kernels(tmp_path: Path) -> Path:
    path = tmp_path / "kernels.py"
    path.write_text(KERNELS)
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- targets and output ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ["rir", "llvm", "ptx", "wgsl", "msl"])
def test_every_target_compiles_and_checks(capsys, kernels, target):
    code, out, err = run(capsys, kernels, "--target", target, "--check")
    assert (code, err) == (0, "")
    assert out


def test_multi_kernel_ptx_module_has_every_entry(capsys, kernels):
    code, out, _ = run(capsys, kernels, "--target", "ptx")
    assert code == 0
    assert re.findall(r"\.visible \.entry (\w+)\(", out) == ["saxpy", "scale"]


def test_multi_kernel_wgsl_module_has_every_entry_point(capsys, kernels):
    code, out, _ = run(capsys, kernels, "--target", "wgsl")
    assert code == 0
    assert len(re.findall(r"@compute @workgroup_size", out)) == 2
    assert "saxpy" in out and "scale" in out


def test_rir_output_parses_back_with_every_function(capsys, kernels):
    code, out, _ = run(capsys, kernels, "--target", "rir")
    assert code == 0
    module = parse(out)
    assert [f.name for f in module.functions] == ["saxpy", "scaled", "scale"]
    assert "const 512.0" in out  # SCALE = 2.0 * N resolved statically


def test_output_is_deterministic(capsys, kernels):
    first = run(capsys, kernels, "-t", "wgsl", "--no-cache")
    second = run(capsys, kernels, "-t", "wgsl", "--no-cache")
    assert first == second


def test_output_file(capsys, kernels, tmp_path):
    out_path = tmp_path / "out" / "k.ptx"
    out_path.parent.mkdir()
    code, out, err = run(capsys, kernels, "--target", "ptx", "-o", out_path)
    assert (code, out, err) == (0, "", "")
    assert ".visible .entry saxpy" in out_path.read_text()
    assert os.listdir(out_path.parent) == ["k.ptx"]  # no temporary left behind


def test_dash_output_is_stdout(capsys, kernels):
    code, out, _ = run(capsys, kernels, "--target", "rir", "-o", "-")
    assert code == 0 and out.startswith("ringir 1\n")


def test_unwritable_output_is_an_error(capsys, kernels, tmp_path):
    code, out, err = run(capsys, kernels, "--target", "rir", "-o", tmp_path / "missing" / "x.rir")
    assert code == 1 and out == ""
    assert "error: cannot write" in err


def test_failed_compile_leaves_no_output_file(capsys, tmp_path):
    bad = write(tmp_path, "bad.py", """\
        import ringkernel as rk
        @rk.kernel
        def k(x: rk.Array[rk.f32]):
            x[0] = undefined_name
        """)
    out_path = tmp_path / "bad.ptx"
    code, _, _ = run(capsys, bad, "--target", "ptx", "-o", out_path)
    assert code == 1
    assert not out_path.exists()


# --- selection and listing ------------------------------------------------------------------


def test_kernel_selects_one_kernel_and_its_callees(capsys, kernels):
    code, out, _ = run(capsys, kernels, "--target", "rir", "--kernel", "scale")
    assert code == 0
    assert [f.name for f in parse(out).functions] == ["scaled", "scale"]


def test_kernel_is_repeatable(capsys, kernels):
    code, out, _ = run(capsys, kernels, "-t", "ptx", "-k", "scale", "-k", "saxpy")
    assert code == 0
    assert sorted(re.findall(r"\.visible \.entry (\w+)\(", out)) == ["saxpy", "scale"]


def test_unknown_kernel_name(capsys, kernels):
    code, out, err = run(capsys, kernels, "-t", "ptx", "--kernel", "nope")
    assert code == 1 and out == ""
    assert "no kernel, func or actor named 'nope' (found: scaled, saxpy, scale)" in err


def test_list_prints_signatures(capsys, kernels):
    code, out, err = run(capsys, kernels, "--list")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "func scaled(v: f32) -> f32",
        "kernel saxpy(a: f32, x: array<f32, global>, y: array<f32, global>, n: i32)",
        "kernel scale(x: array<f32, global>, n: i32)",
    ]


def test_list_of_a_rir_file(capsys, kernels, tmp_path):
    run(capsys, kernels, "-t", "rir", "-o", tmp_path / "m.rir")
    code, out, _ = run(capsys, tmp_path / "m.rir", "--list")
    assert code == 0
    assert out.splitlines()[1] == "func scaled(v: f32) -> f32"


def test_file_without_kernels(capsys, tmp_path):
    empty = write(tmp_path, "empty.py", "import ringkernel as rk\nX = 1\n")
    code, _, err = run(capsys, empty, "-t", "ptx")
    assert code == 1
    assert "empty.py: error: no @rk.kernel functions or @rk.actor classes found" in err


# --- .rir input -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["ptx", "wgsl", "msl", "llvm", "rir"])
def test_rir_input(capsys, kernels, tmp_path, target):
    rir = tmp_path / "module.rir"
    assert run(capsys, kernels, "-t", "rir", "-o", rir)[0] == 0
    code, out, err = run(capsys, rir, "--target", target, "--check")
    assert (code, err) == (0, "")
    direct = run(capsys, kernels, "--target", target)[1]
    assert out == direct  # the same module, whichever way it came in


def test_rir_input_with_kernel_selection(capsys, kernels, tmp_path):
    rir = tmp_path / "module.rir"
    run(capsys, kernels, "-t", "rir", "-o", rir)
    code, out, _ = run(capsys, rir, "-t", "rir", "-k", "saxpy")
    assert code == 0
    assert [f.name for f in parse(out).functions] == ["saxpy"]


def test_malformed_rir_is_located(capsys, tmp_path):
    rir = write(tmp_path, "bad.rir", "ringir 1\n\nkernel @k() -> void {\n  bogus\n}\n")
    code, _, err = run(capsys, rir, "-t", "wgsl")
    assert code == 1
    assert re.match(r"^.*bad\.rir:4:\d+: error: ", err)


# --- flags -----------------------------------------------------------------------------------


def test_arch(capsys, kernels):
    code, out, _ = run(capsys, kernels, "-t", "ptx", "--arch", "sm_90", "--check")
    assert code == 0 and ".target sm_90" in out


def test_arch_selects_nvptx_llvm(capsys, kernels):
    code, out, _ = run(capsys, kernels, "-t", "llvm", "--arch", "sm_80", "--check")
    assert code == 0 and "nvptx64-nvidia-cuda" in out


def test_block_sets_the_workgroup_size(capsys, kernels):
    code, out, _ = run(capsys, kernels, "-t", "wgsl", "--block", "128", "--check")
    assert code == 0 and "@workgroup_size(128, 1, 1)" in out
    code, out, _ = run(capsys, kernels, "-t", "wgsl", "--block", "16,4")
    assert code == 0 and "@workgroup_size(16, 4, 1)" in out


def test_fastmath(capsys, kernels):
    precise = run(capsys, kernels, "-t", "msl")[1]
    fast = run(capsys, kernels, "-t", "msl", "--fastmath")[1]
    assert "metal::fast::" in fast and "metal::fast::" not in precise
    code, out, _ = run(capsys, kernels, "-t", "ptx", "--fastmath", "--check")
    assert code == 0 and out != run(capsys, kernels, "-t", "ptx")[1]


def test_no_cache_runs_the_emitter(capsys, kernels, monkeypatch, private_cache_dir):
    import ringkernel.lowering.wgsl as wgsl

    calls = []
    real = wgsl.lower_module_to_wgsl
    monkeypatch.setattr(wgsl, "lower_module_to_wgsl", lambda m, **o: calls.append(1) or real(m, **o))
    run(capsys, kernels, "-t", "wgsl")
    run(capsys, kernels, "-t", "wgsl")
    assert len(calls) == 1  # second run: memory/disk cache
    run(capsys, kernels, "-t", "wgsl", "--no-cache")
    assert len(calls) == 2
    assert list(private_cache_dir.rglob("*.entry"))


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("ringc (RingKernel) 0.")


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for flag in ("--target", "--kernel", "--arch", "--check", "--list", "--no-cache", "--version", "-o"):
        assert flag in out


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: FILE"),
        (["{k}"], "--target (or --list)"),
        (["{k}", "-t", "cuda"], "invalid choice: 'cuda'"),
        (["{k}", "-t", "ptx", "--arch", "80"], "invalid architecture '80'"),
        (["{k}", "-t", "wgsl", "--arch", "sm_80"], "--arch applies to --target ptx or llvm"),
        (["{k}", "-t", "ptx", "--block", "64"], "--block applies to --target wgsl"),
        (["{k}", "-t", "wgsl", "--block", "0"], "invalid block size '0'"),
        (["{k}", "-t", "wgsl", "--fastmath"], "--fastmath applies to"),
        (["notes.txt", "-t", "ptx"], "name it *.py or *.rir"),
        (["{k}", "-t", "ptx", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_usage_errors_exit_2(capsys, kernels, argv, message):
    code, out, err = run(capsys, *[a.format(k=kernels) for a in argv])
    assert code == 2 and out == ""
    assert "usage: ringc" in err and message in err


def test_missing_input_file_exits_1(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path / "nope.py", "-t", "ptx")
    assert code == 1
    assert f"{tmp_path / 'nope.py'}: error: cannot read '{tmp_path / 'nope.py'}': No such file" in err


# --- diagnostics ------------------------------------------------------------------------------


def test_diagnostic_format_line_col_caret(capsys, tmp_path):
    src = write(tmp_path, "diag.py", """\
        import ringkernel as rk
        from ringkernel import Array, f32

        @rk.kernel
        def k(x: Array[f32]):
            i = rk.global_id(0)
            x[i] = print(i)
        """)
    code, out, err = run(capsys, src, "-t", "ptx")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{src}:7:12: error: print() is not supported in kernels; write values into an Array",
        "        x[i] = print(i)",
        "               ^^^^^^^^",
    ]
    assert "Traceback" not in err


def test_several_errors_in_one_run(capsys, tmp_path):
    src = write(tmp_path, "many.py", """\
        import ringkernel as rk
        from ringkernel import Array, f32

        @rk.func
        def broken(v: f32) -> f32:
            return v + missing_one

        @rk.kernel
        def first(x: Array[f32]):
            x[0] = broken(x[0])

        @rk.kernel
        def second(x: Array[f32]):
            x[0] = "text"

        @rk.kernel
        def fine(x: Array[f32]):
            x[0] = 1.0
        """)
    code, _, err = run(capsys, src, "-t", "wgsl")
    assert code == 1
    located = re.findall(r"^.*many\.py:(\d+):(\d+): error: ", err, re.M)
    assert located == [("6", "16"), ("14", "12")]  # broken's error once, though 'first' calls it
    assert err.rstrip().endswith("2 errors generated.")


def test_python_syntax_error_is_located(capsys, tmp_path):
    src = write(tmp_path, "syntax.py", "import ringkernel as rk\n\ndef f(:\n    pass\n")
    code, _, err = run(capsys, src, "-t", "ptx")
    assert code == 1
    assert re.match(rf"^{re.escape(str(src))}:3:7: error: invalid Python syntax", err)
    assert "def f(:" in err and "Traceback" not in err


def test_undecodable_input_is_an_error(capsys, tmp_path):
    src = tmp_path / "binary.py"
    src.write_bytes(b"import ringkernel as rk\nx = '\xff\xfe'\n")
    code, _, err = run(capsys, src, "-t", "ptx")
    assert code == 1
    assert f"{src}:2:" in err and "not valid text" in err


def test_deeply_nested_input_is_an_error_not_a_crash(capsys, tmp_path):
    src = write(tmp_path, "deep.py", "import ringkernel as rk\nX = " + "(" * 300 + "1" + ")" * 300 + "\n")
    code, _, err = run(capsys, src, "-t", "ptx")
    assert code == 1
    assert "Traceback" not in err and "internal" not in err


def test_target_limitation_is_reported_against_the_input(capsys, tmp_path):
    src = write(tmp_path, "f64.py", """\
        import ringkernel as rk
        from ringkernel import Array, f64

        @rk.kernel
        def k(x: Array[f64]):
            x[0] = x[0] * 2.0
        """)
    code, _, err = run(capsys, src, "-t", "wgsl")
    assert code == 1
    assert "f64" in err and err.startswith(str(src))


# --- never runs the input -----------------------------------------------------------------------


def test_module_level_side_effects_do_not_happen(capsys, tmp_path):
    marker = tmp_path / "PWNED"
    src = write(tmp_path, "evil.py", f"""\
        import ringkernel as rk
        from ringkernel import Array, f32
        open({str(marker)!r}, "w").write("imported!")
        import os
        os.system("touch {marker}")
        COUNT = len(open({str(marker)!r}, "w").write("x") * "ab")

        @rk.kernel
        def k(x: Array[f32]):
            x[rk.global_id(0)] = 1.0
        """)
    for target in ("ptx", "wgsl", "msl", "llvm", "rir"):
        assert run(capsys, src, "-t", target)[0] == 0
    assert run(capsys, src, "--list")[0] == 0
    assert not marker.exists()
    assert "evil" not in sys.modules


def test_runtime_value_used_in_a_kernel_says_ringc_cannot_know_it(capsys, tmp_path):
    src = write(tmp_path, "runtime.py", """\
        import os
        import ringkernel as rk
        from ringkernel import Array, f32

        WIDTH = int(os.environ["WIDTH"])

        @rk.kernel
        def k(x: Array[f32]):
            x[rk.global_id(0)] = WIDTH * 2.0
        """)
    code, _, err = run(capsys, src, "-t", "ptx")
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith(
        f"{src}:9:26: error: ringc cannot know the value of 'WIDTH' without running the file"
    )
    assert "line 5" in first


# --- aliases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, kernel_decorator, func_decorator, gid",
    [
        ("import ringkernel as rk", "rk.kernel", "rk.func", "rk.global_id"),
        ("import ringkernel", "ringkernel.kernel", "ringkernel.func", "ringkernel.global_id"),
        ("from ringkernel import kernel, func, global_id", "kernel", "func", "global_id"),
        ("from ringkernel import kernel as k, func as f, global_id as gid", "k", "f", "gid"),
        ("import ringkernel.kernels as rkk\nfrom ringkernel.frontends import dsl", "rkk.kernel", "rkk.func",
         "dsl.global_id"),
        ("from ringkernel import *", "kernel", "func", "global_id"),
    ],
)
def test_aliasing_variants(capsys, tmp_path, header, kernel_decorator, func_decorator, gid):
    body = textwrap.dedent(f"""\
        from ringkernel import Array, f32

        @{func_decorator}
        def twice(v: f32) -> f32:
            return v * 2.0

        @{kernel_decorator}
        def k(x: Array[f32]):
            x[{gid}(0)] = twice(1.0)
        """)
    src = tmp_path / "alias.py"
    src.write_text(header + "\n" + body)
    code, out, err = run(capsys, src, "--list")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["func twice(v: f32) -> f32", "kernel k(x: array<f32, global>)"]


def test_kernel_corpus_compiles_statically(capsys):
    corpus = Path(__file__).parents[1] / "kernel_corpus.py"
    import kernel_corpus

    code, out, err = run(capsys, corpus, "-t", "rir")
    assert (code, err) == (0, "")
    names = {f.name for f in parse(out).kernels}
    every = (*kernel_corpus.CASES, *kernel_corpus.GRID_SYNC_CASES)
    static = [c for c in every if c.static]  # test_generics.py: --specialize
    assert names == {c.name for c in static}
    for case in static:  # the static reader builds what the decorators build
        assert str(parse(out).get(case.name)) == str(case.kernel.ir.get(case.name))


# --- actors ---------------------------------------------------------------------------------------

ACTORS = textwrap.dedent(
    """\
    import ringkernel as rk
    from ringkernel import Array, f32, u32

    @rk.message
    class Add:
        value: f32

    @rk.actor
    class Accumulator:
        total: f32 = 0.0
        count: u32 = 0

        def add(self, msg: Add) -> "Total":
            self.total += msg.value
            self.count += 1
            return Total(total=self.total, count=self.count)

    @rk.message
    class Total:
        total: f32
        count: u32

    @rk.kernel
    def fill(x: Array[f32]):
        x[rk.global_id(0)] = 1.0
    """
)


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    path = tmp_path / "actors.py"
    path.write_text(ACTORS)
    return path


def test_list_shows_messages_and_actors(capsys, actors):
    code, out, err = run(capsys, actors, "--list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "message Add(value: f32)"
    assert lines[1].startswith("actor Accumulator(ctrl: array<u32, global>, state: array<u32, global>,")
    assert lines[1].endswith("# handles Add")
    assert lines[2:] == ["message Total(total: f32, count: u32)", "kernel fill(x: array<f32, global>)"]


@pytest.mark.parametrize("target", ["rir", "llvm", "ptx", "wgsl", "msl"])
def test_actor_and_kernel_in_one_output(capsys, actors, target):
    code, out, err = run(capsys, actors, "-t", target, "--check")
    assert (code, err) == (0, "")
    assert "Accumulator" in out and "fill" in out


@pytest.mark.parametrize("target", ["rir", "ptx", "wgsl", "msl"])
def test_actor_output_matches_the_decorator(capsys, actors, target):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ringc_live_actors", actors)
    live = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(live)  # the decorators, for comparison: this test does run the file
    code, out, _ = run(capsys, actors, "-t", target, "-k", "Accumulator")
    assert code == 0
    assert out == live.Accumulator.compile(target)


def test_kernel_naming_a_message_is_an_error(capsys, actors):
    code, _, err = run(capsys, actors, "-t", "ptx", "-k", "Add")
    assert code == 1
    assert "'Add' is a message; name the actor that handles it" in err


def test_actor_errors_are_located(capsys, tmp_path):
    src = write(tmp_path, "bad_actor.py", """\
        import ringkernel as rk
        from ringkernel import Array, f32

        @rk.message
        class Ping:
            value: f32

        @rk.actor
        class Twice:
            state: Array[f32]

            def one(self, msg: Ping) -> None:
                pass

        @rk.actor
        class Dup:
            def one(self, msg: Ping) -> None:
                pass

            def two(self, m: Ping) -> None:
                pass
        """)
    code, _, err = run(capsys, src, "-t", "ptx")
    assert code == 1
    assert re.findall(r"bad_actor\.py:(\d+):(\d+): error: (.*)", err) == [
        ("10", "12", "actor 'Twice': field 'state' has unsupported type 'Array[f32]'; "
         "use f32, f64, i32, u32, i64, u64, bool or Vec[T, N] of them"),
        ("20", "5", "actor 'Dup' has two handlers for message 'Ping': 'one' and 'two'; "
         "one message type has one handler"),
    ]


def test_actor_definitions_of_the_actor_tests_compile(capsys):
    defs = Path(__file__).parents[1] / "actors" / "actor_defs.py"
    code, out, err = run(capsys, defs, "-t", "ptx", "--check")
    assert (code, err) == (0, "")
    declared = re.findall(r"^@rk\.actor\s*\nclass (\w+)", defs.read_text(), re.MULTILINE)
    assert declared and sorted(re.findall(r"\.visible \.entry (\w+)\(", out)) == sorted(declared)


# --- the installed entry points ----------------------------------------------------------------


def test_console_script_and_python_dash_m(kernels, tmp_path):
    ringc = shutil.which("ringc", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    assert ringc, "the ringc console script is not installed (pip install -e .)"
    env = {**os.environ, "RINGKERNEL_CACHE_DIR": str(tmp_path / "cache")}
    script = subprocess.run([ringc, str(kernels), "-t", "wgsl"], capture_output=True, text=True, env=env)
    module = subprocess.run(
        [sys.executable, "-m", "ringkernel", str(kernels), "-t", "wgsl"],
        capture_output=True, text=True, env=env,
    )
    assert (script.returncode, script.stderr) == (0, "")
    assert (module.returncode, module.stdout) == (0, script.stdout)
    usage = subprocess.run([ringc, str(kernels)], capture_output=True, text=True, env=env)
    assert usage.returncode == 2
    bad = tmp_path / "bad.py"
    bad.write_text("import ringkernel as rk\n@rk.kernel\ndef k(x: int):\n    y = nope\n")
    failed = subprocess.run([ringc, str(bad), "-t", "ptx"], capture_output=True, text=True, env=env)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"{bad}:4:9: error: name 'nope' is not defined")
    assert "Traceback" not in failed.stderr
