"""The private XDG_RUNTIME_DIR made for Mesa's window-system probe is removed at exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_private_runtime_dir_does_not_outlive_the_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    code = (
        "import os\n"
        "from ringkernel.lowering.wgsl import naga\n"
        "naga._quiet_window_system_probe()\n"
        "print(os.environ['XDG_RUNTIME_DIR'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.name.startswith("ringkernel-xdg-")
    assert not path.exists()
