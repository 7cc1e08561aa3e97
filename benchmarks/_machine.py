"""What the benchmark tables record about the machine they were measured on."""

from __future__ import annotations

import platform


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), for the tables' footnotes."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
