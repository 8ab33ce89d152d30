"""Ctrl-C stops a cooperative (rk.grid_sync) cpu launch, as it stops a normal one.

Regression: the grid's threads never read the cancel flag, so a SIGINT during a
cooperative launch set it and then waited for a kernel that never looked (a hang).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import ringkernel as rk
    from ringkernel import Array, i32

    @rk.kernel
    def spin(out: Array[i32], rounds: i32):
        n = 0
        for _ in range(rounds):  # 2**31 - 1 rounds: hours, only a cancel ends them
            rk.grid_sync()
            n += 1
        out[rk.global_id(0)] = n

    out = np.zeros(8, np.int32)
    spin.launch(2, 4, (out, 3), backend="cpu")  # compiled and run once
    assert (out == 3).all()
    print("ready", flush=True)
    try:
        spin.launch(2, 4, (out, 2**31 - 1), backend="cpu")
    except KeyboardInterrupt:
        spin.launch(2, 4, (out, 5), backend="cpu")  # the backend still works afterwards
        assert (out == 5).all()
        print("interrupted", flush=True)
        sys.exit(0)
    print("finished", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX-only")
def test_sigint_stops_a_cooperative_launch_at_its_next_grid_sync(tmp_path: Path) -> None:
    script = tmp_path / "spin.py"  # a file: the frontend reads the kernel's source
    script.write_text(_CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr and child.stderr.read()
        time.sleep(0.5)  # inside the endless launch by now
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out.strip() == "interrupted"
