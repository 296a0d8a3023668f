"""A parent process for multi-device runs on one machine, so a dead rank still ends in one line.

With ``--devices N > 1`` Lightning starts the other ranks as children of the rank-0 process and,
when one of them dies, kills every process of the run with SIGKILL, rank 0 included: nothing
inside the run can report it. ``vfr-bench bench`` therefore runs such a command in a child
process and waits; if that child is killed, it says what happened and how to resume (the
finished clips' records are on disk, and the same command skips them). Runs whose processes
are started by a cluster launcher (SLURM, torchrun) are left to that launcher.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ENV_FLAG = "VFR_BENCH_SUPERVISED"
# set by launchers that start every rank themselves (Lightning then creates no processes)
_LAUNCHERS = ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS")


def needs_supervisor(devices: int, strategy: str) -> bool:
    """True for a multi-device run that Lightning's subprocess launcher will fan out."""
    if devices <= 1 or os.environ.get(ENV_FLAG) or "spawn" in strategy:
        return False
    return not any(k in os.environ for k in _LAUNCHERS)


def supervise(argv: list[str], out: Path) -> int:
    """Run ``vfr-bench`` with ``argv`` in a child and return its exit code; a child killed by a
    signal (a DDP rank died and Lightning ended the run) is reported in one line, exit 1."""
    cmd = [sys.executable, "-m", "vfr_bench.cli", *argv]
    child = subprocess.Popen(cmd, env={**os.environ, ENV_FLAG: "1"})
    try:
        rc = child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        child.wait()
        print(f"vfr-bench: interrupted; finished clips are kept in {out}; re-run the same command to "
              f"resume.", file=sys.stderr)
        return 130
    if rc < 0:
        name = signal.Signals(-rc).name
        print(f"vfr-bench: error: a DDP rank died ({name}) and the run was stopped; finished clips are "
              f"kept in {out}; re-run the same command to resume.", file=sys.stderr)
        return 1
    return rc
