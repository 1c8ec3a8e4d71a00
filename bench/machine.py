"""What every benchmark records of the machine it ran on: CPUs and their model, memory, Python, the OS.

The CPU model matters beside the count: two sittings on "the same 2 vCPUs" have run on different processors
(AMD EPYC, then an Intel Xeon), and a figure moves with the processor as much as with the code.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The processor's model name as the OS reports it (Linux /proc/cpuinfo; else `platform.processor()`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    """The machine as a results file records it, with the load average when the benchmark ended."""
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
