"""``python -m bench [--quick] [--only NAME] [--json OUT]``: run the benchmarks, print ratios."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable

from bench import (
    actors,
    budget_checks,
    compile_time,
    cpu_numba,
    cpu_numpy,
    device_arrays,
    durability,
    groups,
    messaging,
    observability,
    overhead,
    parallel_primitives,
    wgpu_cpu,
)
from bench.caches import isolated_cache_root
from bench.report import Row, Skipped, render_table, to_json
from bench.settings import Settings
from ringkernel.observability.progress import ProgressBar

# name -> run(settings) -> rows, in the order they run
SUITES: dict[str, Callable[[Settings], list[Row]]] = {
    "cpu": cpu_numpy.run,
    "numba": cpu_numba.run,
    "wgpu": wgpu_cpu.run,
    "devarrays": device_arrays.run,
    "compile": compile_time.run,
    "overhead": overhead.run,
    "actors": actors.run,
    "observability": observability.run,
    "budget": budget_checks.run,
    "durability": durability.run,
    "shuffle": parallel_primitives.run_shuffle,
    "sass": parallel_primitives.run_sass,
    "groups": groups.run,
    "messaging": messaging.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes (under 20 s)")
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run only this suite")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    options = parser.parse_args(argv)

    settings = Settings.make(options.quick)
    chosen = [name for name in SUITES if not options.only or name in options.only]
    rows: list[Row] = []
    failed: list[str] = []
    start = time.perf_counter()
    progress = ProgressBar(len(chosen))  # drawn only when stderr is a terminal
    with isolated_cache_root():
        for name in chosen:
            progress.step(f"suite {name}")
            suite_start = time.perf_counter()
            try:
                rows.extend(SUITES[name](settings))
                status = f"{time.perf_counter() - suite_start:.1f} s"
            except Skipped as exc:
                status = f"skipped: {exc}"
            except Exception:  # a broken suite must not hide the others' results
                traceback.print_exc()
                failed.append(name)
                status = "FAILED (traceback above)"
            progress.close()
            print(f"[{name}: {status}]", file=sys.stderr, flush=True)
    print(render_table(rows))
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "quick": options.quick,
        "suites": chosen,
        "failed": failed,
        "seconds": round(time.perf_counter() - start, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(
        f"\nratio = ours / baseline time (below 1: ours faster). {meta['machine']}, {meta['date']}, "
        f"load average {meta['load_average_1min']} (other processes skew results)"
    )
    if options.json:
        with open(options.json, "w") as out:
            out.write(to_json(rows, meta) + "\n")
    if failed:
        print(f"failed suites: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
