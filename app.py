"""Entry point.

    python app.py                                   serve the web UI (prints the local address)
    python app.py retarget --motion clip.bvh --character Ava --out out/
    python app.py characters                        list the built-in characters
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _cmd_characters(args: argparse.Namespace) -> int:
    from core.character import builtin_character_names, load_character

    print(f"{'name':<10} {'height':>7} {'joints':>6} {'vertices':>8} {'triangles':>9}")
    for name in builtin_character_names():
        c = load_character(name)
        print(f"{c.name:<10} {c.height:>6.2f}m {c.skeleton.num_joints:>6} {len(c.rest_vertices):>8} {len(c.faces):>9}")
    return 0


def _cmd_retarget(args: argparse.Namespace) -> int:
    from core.pipeline import retarget_motion_file

    def progress(fraction: float, stage: str) -> None:
        if not args.quiet:
            print(f"[{fraction:4.0%}] {stage}", file=sys.stderr)

    result = retarget_motion_file(args.motion, args.character, args.out, render=not args.no_video,
                                  video_size=args.size, progress=progress)
    print(f"wrote {result.bvh_path}" + (f" and {result.video_path}" if result.video_path else ""))
    print(f"{result.source.num_frames} frames at {result.source.fps:g} fps onto {result.character.name} "
          f"({result.character.height:.2f} m); " + ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items()))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from webapp.ui import serve

    serve(host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", description="Turn human motion into animation of a rigged character.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for input errors")
    parser.add_argument("--host", default="127.0.0.1", help="web UI address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="web UI port (default 7860)")
    parser.set_defaults(func=_cmd_serve)
    sub = parser.add_subparsers(title="commands")

    p = sub.add_parser("retarget", help="retarget a BVH motion onto a character")
    p.add_argument("--motion", required=True, type=Path, help="source motion (.bvh)")
    p.add_argument("--character", required=True, help="built-in character name (see `app.py characters`)")
    p.add_argument("--out", required=True, type=Path, help="output folder (result.bvh, before_after.mp4)")
    p.add_argument("--no-video", action="store_true", help="skip the before/after video")
    p.add_argument("--size", type=int, default=512, help="video panel size in pixels (default 512)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_retarget)

    p = sub.add_parser("characters", help="list the built-in characters")
    p.set_defaults(func=_cmd_characters)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.errors import InputError

    try:
        return args.func(args)
    except InputError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
