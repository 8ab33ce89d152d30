"""Runs the atheris fuzz targets: all of them or one, for N runs or T seconds.

    python -m fuzz                       # every target, its smoke-test number of runs
    python -m fuzz parser --runs 100000  # one target, a long campaign
    python -m fuzz wgsl --time 600       # one target for ten minutes
    python -m fuzz repro parser crash-*  # re-run saved inputs without atheris
    python -m fuzz seeds                 # rewrite fuzz/corpus/ from the kernel corpus

Each target runs in its own process (libFuzzer ends the process when it is
done) with coverage instrumentation of ``ringkernel``; this process reads
libFuzzer's status lines and shows one progress line per target.  New inputs
go to a work corpus (``--work``, default a temporary directory), never into
the small seed corpora under ``fuzz/corpus/<target>/``; crash inputs go to
``--artifacts`` (default ``fuzz-artifacts/``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ringkernel.observability.progress import bar

FUZZ_DIR = Path(__file__).resolve().parent
REPO = FUZZ_DIR.parent
TARGETS = ("parser", "frontend", "ptx", "wgsl", "msl", "queues", "hlc", "checkpoint")

_STATUS = re.compile(r"^#(?P<runs>\d+)\s+\w+\s")
_FIELDS = {"cov": re.compile(r"cov: (\d+)"), "corpus": re.compile(r"corp: (\d+)/"),
           "speed": re.compile(r"exec/s: (\d+)")}
_DONE = re.compile(r"^Done (?P<runs>\d+) runs in (?P<secs>\d+) second")


def target_module(name: str):
    """The module of target ``name`` (``fuzz.fuzz_<name>``)."""
    return importlib.import_module(f"fuzz.fuzz_{name}")


def available_targets() -> list[str]:
    """Targets whose module exists and imports (queues/hlc need the actor runtime)."""
    return [t for t in TARGETS if (FUZZ_DIR / f"fuzz_{t}.py").exists()]


# --- the child: one target under libFuzzer ---------------------------------------------


def child_main(name: str, libfuzzer_args: list[str]) -> None:
    """Runs inside the target's process: instruments ringkernel, then hands over to atheris."""
    import atheris

    with atheris.instrument_imports(include=["ringkernel", "fuzz"]):
        module = target_module(name)
    kwargs = {}
    if hasattr(module, "custom_mutator"):
        kwargs["custom_mutator"] = module.custom_mutator
    atheris.Setup([sys.argv[0], *libfuzzer_args], module.test_one_input, **kwargs)
    atheris.Fuzz()


# --- the parent: progress display ------------------------------------------------------


@dataclass
class Progress:
    target: str
    goal: str
    runs: int = 0
    cov: int = 0
    corpus: int = 0
    speed: int = 0
    seconds: float = 0.0
    crashed: bool = False
    log: list[str] = field(default_factory=list)

    def fraction(self, runs: int | None, seconds: int | None) -> float:
        """How far toward its goal (runs, or seconds) the campaign is."""
        if runs:
            return self.runs / runs
        return self.seconds / seconds if seconds else 0.0

    def line(self) -> str:
        state = "FINDING" if self.crashed else ""
        return (f"[{self.target:8}] {self.runs:>9} runs / {self.goal:<10} cov {self.cov:>5}  "
                f"corpus {self.corpus:>5}  {self.speed:>6} exec/s  {self.seconds:6.0f}s {state}")


def run_target(name: str, runs: int | None, seconds: int | None, work: Path, artifacts: Path,
               extra: list[str], quiet: bool = False) -> Progress:
    """Fuzzes one target in a child process; returns its final numbers."""
    module_file = FUZZ_DIR / f"fuzz_{name}.py"
    if not module_file.exists():
        raise SystemExit(f"no fuzz target '{name}' (have: {', '.join(available_targets())})")
    smoke = _smoke_runs(name)
    if runs is None and seconds is None:
        runs = smoke
    corpus = work / name
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [str(corpus)]
    seeds = FUZZ_DIR / "corpus" / name
    if seeds.is_dir():
        args.append(str(seeds))
    args += [f"-artifact_prefix={artifacts}/{name}-", "-print_final_stats=1", "-rss_limit_mb=4096",
             "-timeout=60"]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    dict_name = _module_attr(name, "DICT")
    if dict_name:
        args.append(f"-dict={FUZZ_DIR / 'dicts' / dict_name}")
    max_len = _module_attr(name, "MAX_LEN")
    if max_len:
        args.append(f"-max_len={max_len}")
    args += extra
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("RINGKERNEL_NO_CACHE", "1")
    env.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    goal = f"{runs}" if runs is not None else f"{seconds}s"
    progress = Progress(name, goal)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fuzz.run", "--child", name, "--", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    tty = sys.stderr.isatty() and not quiet
    last = 0.0
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        progress.log.append(line)
        del progress.log[:-400]
        progress.seconds = time.monotonic() - start
        status = _STATUS.match(line)
        if status:
            progress.runs = int(status["runs"])
            for attr, pattern in _FIELDS.items():
                found = pattern.search(line)
                if found:
                    setattr(progress, attr, int(found.group(1)))
        if "ERROR: libFuzzer" in line or "Uncaught Python exception" in line:
            progress.crashed = True
        done = _DONE.match(line)
        if done:
            progress.runs = int(done["runs"])
        now = time.monotonic()
        if tty and now - last > 0.5:
            sys.stderr.write("\r" + bar(progress.fraction(runs, seconds)) + " " + progress.line())
            sys.stderr.flush()
            last = now
        elif not tty and not quiet and status and now - last > 30:
            print(progress.line(), flush=True)
            last = now
    code = proc.wait()
    progress.seconds = time.monotonic() - start
    if progress.seconds > 0 and progress.runs:
        progress.speed = int(progress.runs / progress.seconds)
    progress.crashed = progress.crashed or code != 0
    if tty:
        sys.stderr.write("\r\x1b[2K" + progress.line() + "\n")
    elif not quiet:
        print(progress.line(), flush=True)
    if progress.crashed:
        sys.stderr.write("\n".join(progress.log[-80:]) + "\n")
    return progress


def _smoke_runs(name: str) -> int:
    return int(_module_attr(name, "SMOKE_RUNS") or 200)


def _module_attr(name: str, attr: str) -> str | None:
    """Reads ``ATTR = value`` from the target's source without importing it (cheap, no GPU)."""
    text = (FUZZ_DIR / f"fuzz_{name}.py").read_text()
    found = re.search(rf"^{attr} = (.+)$", text, re.MULTILINE)
    if not found:
        return None
    return found.group(1).strip().strip("\"'")


def repro(name: str, paths: list[str]) -> int:
    """Runs saved inputs through the target directly; prints each outcome."""
    module = target_module(name)
    failures = 0
    for path in paths:
        data = Path(path).read_bytes()
        try:
            module.test_one_input(data)
        except Exception as exc:  # a finding: show it and keep going
            failures += 1
            print(f"{path}: FINDING {type(exc).__name__}: {exc}")
        else:
            print(f"{path}: ok")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        name = argv[1]
        rest = argv[3:] if argv[2:3] == ["--"] else argv[2:]
        child_main(name, rest)
        return 0
    if argv[:1] == ["repro"]:
        if len(argv) < 3:
            raise SystemExit("usage: python -m fuzz repro TARGET FILE...")
        return repro(argv[1], argv[2:])
    if argv[:1] == ["seeds"]:
        from fuzz.seeds import write_seeds

        write_seeds()
        return 0
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", default="all",
                        help=f"one of {', '.join(TARGETS)}, or 'all' (default)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--runs", type=int, help="runs per target (default: the target's SMOKE_RUNS)")
    limit.add_argument("--time", type=int, help="seconds per target")
    parser.add_argument("--work", type=Path, help="work corpus directory (default: a temporary one)")
    parser.add_argument("--artifacts", type=Path,
                        default=Path(tempfile.gettempdir()) / "ringkernel-fuzz-artifacts",
                        help="where crash inputs are written")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.epilog = "Flags after '--' go to libFuzzer, e.g. -- -max_len=4096"
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(argv)
    names = available_targets() if args.target == "all" else [args.target]
    work_tmp = None
    if args.work is None:
        work_tmp = tempfile.mkdtemp(prefix="ringkernel-fuzz-")
        work = Path(work_tmp)
    else:
        work = args.work
    results = []
    try:
        for name in names:
            results.append(run_target(name, args.runs, args.time, work, args.artifacts, extra,
                                      args.quiet))
    finally:
        if work_tmp:
            shutil.rmtree(work_tmp, ignore_errors=True)
    print("\ntarget      runs     exec/s  seconds  result")
    for p in results:
        verdict = "FINDING (see above; input in " + str(args.artifacts) + ")" if p.crashed else "clean"
        print(f"{p.target:9} {p.runs:>8} {p.speed:>9} {p.seconds:>8.1f}  {verdict}")
    return 1 if any(p.crashed for p in results) else 0


if __name__ == "__main__":
    sys.exit(main())
