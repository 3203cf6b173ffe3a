"""Start-up time of `animate`: wall time of `--help` answers in fresh processes; prints a markdown table.

    python scripts/bench_startup.py [--runs 10]

The heavy libraries (torch, diffusers, transformers) are imported by the commands that need them, never by
argparse's answers; tests/test_cli.py checks that through sys.modules. This measures what a user waits.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone


def commands() -> dict[str, list[str]]:
    """What is timed: the bare interpreter, `python -m animate`, and the installed `animate` script."""
    found = {"`python -c pass` (the interpreter alone)": [sys.executable, "-c", "pass"]}
    script = shutil.which("animate")
    for argv in (["--help"], ["infer", "--help"], ["train", "--help"]):
        found[f"`python -m animate {' '.join(argv)}`"] = [sys.executable, "-m", "animate", *argv]
        if script:
            found[f"`animate {' '.join(argv)}` (installed script)"] = [script, *argv]
    return found


def wall_times(command: list[str], runs: int) -> list[float]:
    """Seconds per fresh process of `command`."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Print the machine line and the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="processes per command (default %(default)s)")
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    print(f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; 1-min load average at start {os.getloadavg()[0]:.2f}")
    print()
    print("| command | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for name, command in commands().items():
        times = wall_times(command, args.runs)
        print(f"| {name} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")


if __name__ == "__main__":
    main()
