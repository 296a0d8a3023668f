"""Clocks and gauges: device-synchronised timing of long blocks, best-of timing of short loops
(``torch.utils.benchmark``), peak memory per row, and the machine's description."""
from __future__ import annotations

import contextlib
import gc
import os
import platform
import resource
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Seconds per named part; synchronises the device around each timed block (method rows:
    one run of seconds to minutes, where one timing is the measurement)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        sync(self.device)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            sync(self.device)
            self.seconds[part] += time.perf_counter() - t0


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """(seconds, result) of one ``fn()`` with the device synchronised before and after."""
    sw = Stopwatch(device)
    with sw("t"):
        result = fn()
    return sw.seconds["t"], result


@dataclass(frozen=True)
class Best:
    """The best per-call time of a short loop and how it was sampled."""
    seconds: float
    blocks: int
    calls_per_block: int

    def describe(self) -> str:
        return f"best of {self.blocks} blocks x {self.calls_per_block} call(s)"


def best_time(fn: Callable[[], object], repeats: int = 3, min_seconds: float = 1.0) -> Best:
    """Best per-call seconds of ``fn()``: ``torch.utils.benchmark.Timer.blocked_autorange``
    (a warm-up that sizes blocks so timer overhead is negligible, then blocks until
    ``min_seconds`` are spent; the device synchronised by its timer) plus more blocks until
    there are ``repeats``, and the fastest block's mean is kept (timeit's convention: the
    minimum is the run least disturbed by the scheduler). Threads as set for the process."""
    from torch.utils import benchmark
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_seconds)
    times = list(m.times)
    while len(times) < max(1, repeats):
        times += timer.timeit(m.number_per_run).times
    return Best(min(times), len(times), m.number_per_run)


class PeakMemory:
    """Peak memory of one row: process RSS and, on CUDA, the allocator's max allocated.

    On Linux the RSS high-water mark (``VmHWM``) is reset per row by writing 5 to
    ``/proc/self/clear_refs``; elsewhere the figure is the process peak so far (``ru_maxrss``),
    and ``rss_scope`` says so.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.scope = "row"

    def reset(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.scope = "row"
        except OSError:
            self.scope = "process"
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> dict:
        rss = None
        if self.scope == "row":
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        rss = int(line.split()[1]) / 1024
            except OSError:
                rss = None
        if rss is None:
            self.scope = "process"
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = {"peak_rss_mb": round(rss, 1), "rss_scope": self.scope}
        if self.device.type == "cuda":
            out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return out


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def machine(device: torch.device) -> dict:
    """CPU model, cores, torch threads and the accelerator's name."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
