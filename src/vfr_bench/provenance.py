"""Where a number came from: package version, git commit, time, checkpoint hashes."""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path

import vfr_bench
from vfr_bench import weights as weight_registry


@lru_cache(maxsize=1)
def git_commit() -> str:
    """Commit of the vfr-bench source tree, with ``-dirty`` for uncommitted changes; ``unknown``
    outside a git checkout."""
    here = Path(vfr_bench.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def version() -> str:
    return vfr_bench.__version__


def weights_sha256(name: str) -> str:
    """sha256 of a registered file, cached beside it by (size, mtime) so big checkpoints are
    hashed once."""
    path = weight_registry.locate(name)
    st = path.stat()
    cache = path.parent / ".sha256-cache.json"
    key = f"{path.name}:{st.st_size}:{st.st_mtime_ns}"
    try:
        table = json.loads(cache.read_text())
    except (OSError, ValueError):
        table = {}
    if key not in table:
        table[key] = weight_registry.sha256_file(path)
        try:
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(table, indent=1))
            os.replace(tmp, cache)
        except OSError:  # read-only folder (e.g. a package's data): just don't cache
            pass
    return table[key]
