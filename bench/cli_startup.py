"""How long `lathe --help` takes, beside a bare `python -c pass` measured in the same run.

    python bench/cli_startup.py [--runs 10]

Target (issue 2): under 0.5 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    bare = median_seconds([sys.executable, "-c", "pass"], runs)
    help_ = median_seconds([sys.executable, "-m", "lathe", "--help"], runs)
    plugins = median_seconds([sys.executable, "-m", "lathe", "plugins"], runs)
    print(f"python -c pass      : {bare:.3f} s")
    print(f"lathe --help        : {help_:.3f} s  ({help_ / bare:.1f}x bare python; target < 0.5 s)")
    print(f"lathe plugins       : {plugins:.3f} s  ({plugins / bare:.1f}x bare python)")


if __name__ == "__main__":
    main()
