"""How many threads a Planner's ops run on: the one place that decides it for the Planner, the
CLI, the node and the benchmarks.

A plan alternates between the graph backend (onnxruntime's sessions, TensorRT's engines or
torch's modules) and torch (the LLM's hidden states, captions, re-ranking) on the same cores.
Left to their defaults the two fight: onnxruntime starts one pool thread per core and lets them
spin between ops, torch's OpenMP threads spin after each parallel op too, and whichever runs
next shares its cores with spinning threads. On the two-core reference machine, with the
bundled model, onnxruntime's own defaults planned in 171 ms p50 and one thread per op in 52 ms;
while other work kept those cores busy, torch on two threads planned in 4.3 s p50 and on one
in 0.12-0.14 s (`planllm bench latency --threads N` measures a count beside these defaults;
bench/results/latency.md). The model's ops take a few milliseconds each, too little for
splitting them to pay for the threads' synchronisation, and on a robot's computer other nodes
hold cores, where a parallel op waits for its slowest thread. Hence:

- torch and onnxruntime: DEFAULT_THREADS per op each, unless told; an explicit count applies
  to both; neither exceeds the cores this process may use (os.sched_getaffinity: a launch file
  or container may pin the node to some cores), since more threads than cores only queue;
- onnxruntime's pool threads never spin, so the cores are free for torch once a graph returns.

torch's count is kept per calling thread (OpenMP), so the Planner sets it in the thread that
plans, each time (ThreadSettings.apply_torch).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

DEFAULT_THREADS = 1  # per op, torch and onnxruntime: the fastest measured (above)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class ThreadSettings:
    """Threads per op for one planner. onnxruntime_spinning: whether onnxruntime's pool threads
    spin between ops (they would hold cores torch needs, so it is off)."""

    cores: int
    torch: int
    onnxruntime: int
    onnxruntime_spinning: bool = False

    def apply_torch(self) -> None:
        """Set torch's intra-op threads for the calling thread (OpenMP keeps a count per thread,
        so a planner loaded on one thread and planning on another sets it where it plans)."""
        if torch.get_num_threads() != self.torch:
            torch.set_num_threads(self.torch)

    def describe(self) -> str:
        """One line for logs: what runs on how many threads, out of how many cores."""
        return (f"torch {self.torch} thread(s), onnxruntime {self.onnxruntime} intra-op thread(s) "
                f"(spinning {'on' if self.onnxruntime_spinning else 'off'}), {self.cores} usable core(s)")


def thread_settings(threads: int | None = None, cores: int | None = None) -> ThreadSettings:
    """The settings for `threads` per op (None or 0: DEFAULT_THREADS) on `cores` usable cores
    (None: this process's affinity), never more threads than cores. ValueError for a negative
    count."""
    cores = usable_cores() if cores is None else cores
    if threads is not None and threads < 0:
        raise ValueError(f"threads must be >= 0 (0: the defaults), got {threads}")
    count = min(threads or DEFAULT_THREADS, cores)
    return ThreadSettings(cores, count, count)
