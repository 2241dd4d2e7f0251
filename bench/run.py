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
          "retarget": "bench.bench_retarget", "optimize": "bench.bench_optimize",
          "semantic": "bench.bench_semantic", "app": "bench.bench_app", "batch": "bench.bench_batch",
          "pose_accuracy": "bench.bench_pose_accuracy", "hands": "bench.bench_hands"}


def _existing_sections() -> dict[str, str]:
    """Sections of the current BENCHMARKS.md by suite, so a partial run keeps the other suites' results."""
    path = ROOT / "BENCHMARKS.md"
    if not path.exists():
        return {}
    parts = path.read_text().split("\n## ")[1:]
    return {part.split("\n", 1)[0].split()[0]: "## " + part.rstrip() + "\n" for part in parts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], help="suites to run (default: all)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    sections = _existing_sections()
    for suite in args.suites or list(SUITES):
        module = importlib.import_module(SUITES[suite])
        print(f"== {suite}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        rows = module.run()
        print(format_table(rows), flush=True)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        sections[suite] = (f"## {suite} ({stamp}; {machine_line()})\n\n{module.__doc__.strip()}\n\n"
                           f"{markdown_table(rows)}\n")
    if not args.no_write:
        text = ("# Benchmarks\n\nWritten by `python -m bench.run [suite ...]`, which replaces the sections it ran.\n"
                "Numbers from a noisy shared 2-core machine: compare rows of the same section (same run).\n\n"
                + "\n".join(sections[s] for s in SUITES if s in sections))
        (ROOT / "BENCHMARKS.md").write_text(text)
        print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
