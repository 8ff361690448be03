"""Freed heap goes back to the system after large computations (service/memory.py): what a
worker thread allocated and freed stays in its malloc arena, so a server's RSS stayed at its
peak; a trim returns it."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from sovrisk.service import memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_a_trim_returns_what_a_worker_thread_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_last", 0.0)
    kept: list[np.ndarray] = []

    def churn() -> None:
        # 96 KB blocks (under glibc's mmap threshold, so they come from the thread's arena),
        # every 50th one kept a moment so the free space is fragmented, not at the top.
        blocks = [np.ones(12_000) for _ in range(3_000)]  # ~290 MB
        kept.extend(blocks[::50])
        del blocks

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    before = _rss_mb()
    assert memory.release_free_memory(job_seconds=1.0) is True
    after = _rss_mb()
    print(f"RSS {before:.0f} MB -> {after:.0f} MB after the trim")
    assert before - after > 100
    # Short jobs trim at most once a second, very short ones never; long ones always.
    assert memory.release_free_memory(job_seconds=0.2) is False
    assert memory.release_free_memory(job_seconds=1.0) is True
    monkeypatch.setattr(memory, "_last", 0.0)
    assert memory.release_free_memory(job_seconds=0.2) is True
    assert memory.release_free_memory(job_seconds=0.001) is False
    kept.clear()
