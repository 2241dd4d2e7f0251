"""Run the benchmarks, print a table and write BENCHMARKS.md.

    python -m bench.run            # every suite
    python -m bench.run core       # one suite

Speed targets are checked here, not in unit tests. Each suite measures its baseline in the same run.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import sys

from .common import ROOT, format_table, machine_line, markdown_table

SUITES = {"core": "bench.bench_core", "pose": "bench.bench_pose", "export": "bench.bench_export",
          "optimize": "bench.bench_optimize", "retarget": "bench.bench_retarget"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], help="suites to run (default: all)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    sections = []
    for suite in args.suites or list(SUITES):
        module = importlib.import_module(SUITES[suite])
        print(f"== {suite}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        rows = module.run()
        print(format_table(rows), flush=True)
        sections.append(f"## {suite}\n\n{module.__doc__.strip()}\n\n{markdown_table(rows)}\n")
    if not args.no_write:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        text = (f"# Benchmarks\n\nWritten by `python -m bench.run` on {stamp}; {machine_line()}.\n"
                "Rerun it to refresh; numbers from a noisy shared machine, compare rows of the same run.\n\n"
                + "\n".join(sections))
        (ROOT / "BENCHMARKS.md").write_text(text)
        print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
