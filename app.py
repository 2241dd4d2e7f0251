"""Entry point.

    python app.py                                   serve the web UI (prints the local address)
    python app.py retarget --motion clip.bvh --character Ava --out out/
    python app.py run VIDEO --character NAME --out DIR [--semantic] [--vlm PATH]
    python app.py pose VIDEO --out DIR              the person's motion (motion.bvh) and source_overlay.mp4
    python app.py people VIDEO [--picture p.png]    the people in view, numbered for --person N (run, pose)
    python app.py characters                        list the built-in characters (and your imported ones)
    python app.py characters --import hero.fbx      add your own character (Mixamo FBX, GLB) to your library
    python app.py export clip.bvh --character Ava --out out/result.fbx   animated character as .fbx/.glb/.bvh
    python app.py batch takes/ --character Ava --out out/ [--workers N] [--address HOST:PORT] [--resume] [--person N]
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded at run time: weights come from local folders


def _cmd_characters(args: argparse.Namespace) -> int:
    from core.character_library import builtin_character_names, load_character, save_user_character, user_character_names

    if args.import_file is not None:
        from core.io.character_import import import_character

        c = import_character(args.import_file, name=args.name or args.import_file.stem)
        path = save_user_character(c)
        print(f"imported {c.name}: {c.height:.2f} m, {c.skeleton.num_joints} joints, {len(c.rest_vertices)} vertices "
              f"-> {path}\nuse it with --character {c.name}")
        return 0
    print(f"{'name':<16} {'height':>7} {'joints':>6} {'vertices':>8} {'triangles':>9}")
    for kind, names in (("", builtin_character_names()), (" (yours)", user_character_names())):
        for name in names:
            c = load_character(name)
            print(f"{c.name:<16} {c.height:>6.2f}m {c.skeleton.num_joints:>6} {len(c.rest_vertices):>8} "
                  f"{len(c.faces):>9}{kind}")
    return 0


class _ProgressDisplay:
    """What the CLI shows while a job runs: in a terminal one bar (stage, elapsed, an estimate of what is left);
    elsewhere (a log, a pipe) one ``[ 42%] stage`` line each time the stage changes."""

    def __init__(self) -> None:
        self.bar = None
        self.last = ""
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=1000, file=sys.stderr, dynamic_ncols=True,
                            bar_format="{desc:<28.28} {percentage:3.0f}%|{bar}| {elapsed} elapsed, ~{remaining} left")

    def __call__(self, fraction: float, stage: str) -> None:
        if self.bar is None:
            if stage != self.last:
                print(f"[{fraction:4.0%}] {stage}", file=sys.stderr)
                self.last = stage
            return
        self.bar.set_description_str(stage, refresh=False)
        self.bar.update(max(0, int(round(1000 * min(fraction, 1.0))) - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_report(result) -> None:
    """What every job command prints: files, what happened in plain sentences (as on the page), then the numbers:
    the clip, who played it, metrics, warnings, time per stage."""
    from jobs import METRIC_LABELS, plain_summary

    r = result.report
    for path in r.files.values():
        print(f"wrote {path}")
    for sentence in plain_summary(r):
        print(sentence)
    line = f"{r.frames} frames at {r.fps:g} fps"
    if r.character is not None:
        line += f" onto {r.character} ({r.height:.2f} m); retargeter: {r.retargeter}"
    print(line)
    if r.licence:
        print(f"licence of the results: {r.licence} (see assets/retarget/MODEL_CARD.md)")
    if r.supervisor:
        print(f"semantic supervisor: {r.supervisor}")
    if r.semantic_source:
        print(f"source semantics from: {r.semantic_source}")
    for key, value in r.metrics.items():
        if value.after is not None and value.before == value.before:  # NaN: nothing to measure (no contacts)
            print(f"{METRIC_LABELS.get(key, key)}: {value.before:.3g} -> {value.after:.3g}")
    if r.measured_on:
        print(f"measured: {r.measured_on}")
    if r.semantic_measured_on:
        print(f"measured: {r.semantic_measured_on}")
    if result.pose is not None:
        pose = result.pose
        print(f"{int(pose.detected.sum())} of {pose.num_frames} frames had a person ({100 * pose.detection_rate:.0f} %), "
              f"{pose.fps:.2f} fps; person {pose.fit.lengths.height:.2f} m tall; fit error {100 * pose.fit_error:.2f} "
              f"cm, reprojection {pose.reprojection_error:.1f} px, jitter {pose.jitter_before:.1f} -> "
              f"{pose.jitter_after:.1f} m/s²; {pose.frames_per_second:.1f} frames/s")
        _print_people(pose)
    for warning in r.warnings:
        print(f"warning: {warning}")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in r.seconds.items()))


def _cmd_people(args: argparse.Namespace) -> int:
    """List the people a job on this video chooses from (numbered as --person takes them); draw them if asked."""
    from pose.pipeline import find_people

    people = find_people(args.source, trim=(args.start or 0.0, args.end))
    if people.count:
        print(f"{people.count} {'person' if people.count == 1 else 'people'} in frame {people.frame_index} "
              f"({people.time:.2f} s), numbered left to right:")
    for line in people.describe():
        print(line)
    if people.count and args.picture is not None:
        import imageio.v3 as iio

        from pose.overlay import people_picture

        iio.imwrite(args.picture, people_picture(people.rgb, people.boxes, people.suggested))
        print(f"wrote {args.picture}")
    if people.count > 1:
        print("follow one of them with --person N (app.py run/pose)")
    return 0


def _print_people(pose) -> None:
    """The people in view when there were several: their numbers for a rerun with --person."""
    tracking = pose.tracking
    if len(tracking.people) < 2:
        return
    print(f"people in frame {tracking.first_frame}, left to right (--person N):")
    for k, (x0, y0, x1, y1) in enumerate(tracking.people, 1):
        mark = " <- followed" if k == tracking.chosen else ""
        print(f"  {k}: box x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px{mark}")


def _cmd_job(args: argparse.Namespace) -> int:
    """run, retarget, pose and export: one job each, presets of one spec."""
    from jobs import preset, run_job

    command = args.command
    options: dict = {}
    if command in ("run", "pose") and args.hands is None:  # the pose stage's default (its import costs a second)
        from pose.pipeline import DEFAULT_HANDS

        args.hands = DEFAULT_HANDS
    if command in ("run", "retarget"):
        options.update(character=args.character, semantic=args.semantic, vlm_path=args.vlm,
                       iterations=args.iterations, foot_locking=not args.no_foot_locking)
    if command == "run":
        options.update(smoothing=args.smoothing, trim=tuple(args.trim) if args.trim else None, person=args.person,
                       hands=args.hands)
    if command == "retarget":
        options.update(outputs=("bvh", *args.formats), previews=not args.no_video, preview_size=args.size,
                       retargeter=args.retargeter)
    if command == "pose":
        trim = (args.start or 0.0, args.end) if args.start is not None or args.end is not None else None
        options.update(smoothing=args.smoothing, trim=trim, previews=not args.no_video, person=args.person,
                       hands=args.hands)
    if command == "export":
        options.update(character=args.character, take=args.take)
    if command != "pose":
        options.update(skeleton_only=args.skeleton_only, fbx_target=args.fbx_target)
    options.update(root=args.root)
    spec = preset(command, args.source, args.out, **options)
    progress = None if args.quiet else _ProgressDisplay()
    try:
        result = run_job(spec, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    _print_report(result)
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    """Every clip of the inputs as one job each, on a local Ray or a cluster; a summary as clips finish."""
    from jobs.batch import run_batch

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, unit="clip", file=sys.stderr, dynamic_ncols=True,
                   bar_format="{n}/{total} clips |{bar}| {elapsed} elapsed, ~{remaining} left {postfix}")

    def progress(done: int, total: int, row) -> None:
        if bar is not None:
            bar.total = total
            bar.set_postfix_str(f"{Path(row.clip).name}: {row.status}", refresh=False)
            bar.update(done - bar.n)

    try:
        rows = run_batch(args.inputs, args.out, workers=args.workers, address=args.address, resume=args.resume,
                         progress=progress, character=args.character, semantic=args.semantic, vlm_path=args.vlm,
                         root=args.root, skeleton_only=args.skeleton_only, fbx_target=args.fbx_target,
                         person=args.person)
    finally:
        if bar is not None:
            bar.close()
    failed = [r for r in rows if r.status == "failed"]
    print(f"{len(rows) - len(failed)} of {len(rows)} clips done "
          f"({sum(r.status == 'skipped' for r in rows)} from an earlier run); summary: {args.out / 'summary.csv'}")
    for r in failed:
        print(f"failed: {Path(r.clip).name}: {r.error}")
    return 1 if failed else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from core.errors import InputError

    budget = args.history_mb
    if budget is None:
        try:
            budget = float(os.environ.get("SMT_HISTORY_MB", "2048"))
        except ValueError:
            raise InputError("SMT_HISTORY_MB must be a number of megabytes") from None
    if not budget >= 0:  # NaN too
        raise InputError(f"the job history's budget (--history-mb, SMT_HISTORY_MB) must be 0 or more, got {budget:g}")
    from webapp.ui import serve

    serve(host=args.host, port=args.port, vlm_path=args.vlm, history_dir=args.history_dir, history_mb=budget)
    return 0


def _output_options(p: argparse.ArgumentParser, skeleton: bool = True) -> None:
    from core.io.export import EXPORT_TARGETS
    from core.motion import ROOT_PLACEMENTS

    p.add_argument("--root", choices=ROOT_PLACEMENTS, default="origin",
                   help="root path in the files: origin (as captured, starting over the origin; default), "
                        "in_place (no travel) or world (coordinates as they came)")
    if skeleton:
        p.add_argument("--skeleton-only", action="store_true",
                       help="FBX/GLB with the animated skeleton only, no mesh (for your own rig)")
        p.add_argument("--fbx-for", dest="fbx_target", choices=EXPORT_TARGETS, default="unity",
                       help="FBX layout: unity (Mixamo's, the default), unreal (a root bone at the origin carries "
                            "the travel, for root motion) or blender (Z up, metres: no 0.01 scale on import)")


def _person_option(p: argparse.ArgumentParser, note: str = "") -> None:
    p.add_argument("--person", type=int, default=None, metavar="N",
                   help="with several people in view, follow person N (numbered from 1, left to right, in the first "
                        "frame with people; `app.py people VIDEO` lists them); default: the largest, most "
                        "central" + note)


def _semantic_option(p: argparse.ArgumentParser) -> None:
    # On by default, as on the page: one default everywhere. --semantic is still accepted (older scripts pass it).
    p.add_argument("--semantic", action=argparse.BooleanOptionalAction, default=True,
                   help="semantic + penetration optimisation, stage II of SMT (default: on; --no-semantic: off)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", description="Turn human motion into animation of a rigged character.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for input errors")
    parser.add_argument("--host", default="127.0.0.1", help="web UI address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="web UI port (default 7860)")
    parser.add_argument("--vlm", default=None, help="web UI: BLIP-2 or CLIP weights folder for every job (default: "
                        "$SMT_VLM_PATH; without weights the skeletal supervisor runs); visitors cannot change it")
    parser.add_argument("--history-mb", type=float, default=None,
                        help="web UI: disk budget of the kept jobs, all browsers together; the oldest are removed "
                             "first (default: $SMT_HISTORY_MB, else 2048)")
    parser.add_argument("--history-dir", type=Path, default=None,
                        help="web UI: folder of the kept jobs (default: $SMT_HOME/jobs, else "
                             "~/.local/share/smt/jobs)")
    parser.set_defaults(func=_cmd_serve)
    sub = parser.add_subparsers(title="commands")
    # --debug is accepted after the command too (`app.py run ... --debug`); SUPPRESS keeps one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks for input errors")

    p = sub.add_parser("retarget", parents=[common], help="retarget a BVH motion onto a character")
    p.add_argument("--motion", dest="source", required=True, type=Path,
                   help="source motion (.bvh, or an animated .fbx/.glb)")
    p.add_argument("--character", required=True, help="character name (see `app.py characters`) or .fbx/.glb file")
    p.add_argument("--formats", nargs="*", default=["fbx", "glb"], choices=["fbx", "glb"],
                   help="animated character files to write besides result.bvh (default: fbx glb)")
    p.add_argument("--out", required=True, type=Path, help="output folder (result.bvh/.fbx/.glb, result.mp4)")
    p.add_argument("--no-video", action="store_true", help="skip the before/after video")
    p.add_argument("--size", type=int, default=512, help="video panel size in pixels (default 512)")
    p.add_argument("--retargeter", choices=["network", "network-cmu", "copy"], default="network",
                   help="graph network (default, non-commercial licence; falls back to Copy without its checkpoint), "
                        "network-cmu (trained on CMU data only: results free for commercial use) or Copy")
    _semantic_option(p)
    p.add_argument("--vlm", default=None, help="BLIP-2 or CLIP weights folder for --semantic (default: "
                   "$SMT_VLM_PATH; without weights the skeletal supervisor runs, and says so)")
    p.add_argument("--iterations", type=int, default=None,
                   help="most optimisation steps (default: the optimiser's, 120)")
    p.add_argument("--no-foot-locking", action="store_true", help="let stage II move planted feet")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _output_options(p)
    p.set_defaults(func=_cmd_job, command="retarget")

    p = sub.add_parser("run", parents=[common],
                       help="the whole flow: video (or motion file) -> animated character files")
    p.add_argument("source", type=Path, help="video of one person, or a motion file (.bvh/.fbx)")
    p.add_argument("--character", required=True, help="built-in character name, or a .fbx/.glb file")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    _semantic_option(p)
    p.add_argument("--vlm", default=None, help="BLIP-2 weights folder (default: $SMT_VLM_PATH, else skeletal)")
    p.add_argument("--smoothing", type=float, default=0.5, help="pose smoothing strength 0..1 (default 0.5)")
    p.add_argument("--hands", action=argparse.BooleanOptionalAction, default=None,
                   help="track the hands and move the fingers of characters with finger bones (about 2x the pose "
                        "stage's time; default on)")
    p.add_argument("--iterations", type=int, default=None,
                   help="most optimisation steps (default: the optimiser's, 120)")
    p.add_argument("--trim", type=float, nargs=2, metavar=("START", "END"), help="use only this part (seconds)")
    _person_option(p)
    p.add_argument("--no-foot-locking", action="store_true", help="let stage II move planted feet")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _output_options(p)
    p.set_defaults(func=_cmd_job, command="run")

    p = sub.add_parser("pose", parents=[common],
                       help="video of a person -> motion.bvh (their own skeleton) and source_overlay.mp4")
    p.add_argument("source", metavar="video", type=Path,
                   help="video of one person (mp4, mov, mkv, webm, ...; at most 10 minutes)")
    p.add_argument("--out", required=True, type=Path, help="output folder (motion.bvh, source_overlay.mp4)")
    p.add_argument("--smoothing", type=float, default=0.5, help="filter strength 0..1 (default 0.5; 0 = off)")
    p.add_argument("--hands", action=argparse.BooleanOptionalAction, default=None,
                   help="also track the hands and write finger joints (about 2x the time; default on)")
    p.add_argument("--start", type=float, default=None, help="use the video from this second on")
    p.add_argument("--end", type=float, default=None, help="use the video up to this second")
    p.add_argument("--no-video", action="store_true", help="skip the overlay video")
    _person_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _output_options(p, skeleton=False)
    p.set_defaults(func=_cmd_job, command="pose")

    p = sub.add_parser("people", parents=[common],
                       help="list the people in view (numbered for --person), optionally as a picture")
    p.add_argument("source", metavar="video", type=Path, help="the video")
    p.add_argument("--picture", type=Path, default=None, help="write the frame with numbered boxes (.png/.jpg)")
    p.add_argument("--start", type=float, default=None, help="the job's trim start (seconds), if it has one")
    p.add_argument("--end", type=float, default=None, help="the job's trim end (seconds)")
    p.add_argument("--quiet", action="store_true", help="no MediaPipe log lines")
    p.set_defaults(func=_cmd_people)

    p = sub.add_parser("batch", parents=[common],
                       help="many clips (files and folders) at once, locally or on a Ray cluster")
    p.add_argument("inputs", nargs="+", type=Path, help="videos, motion files (.bvh/.fbx/.glb) and folders of them")
    p.add_argument("--character", required=True, help="built-in character name, or a .fbx/.glb file")
    p.add_argument("--out", required=True, type=Path, help="output folder: one subfolder per clip, summary.csv/json")
    _semantic_option(p)
    p.add_argument("--vlm", default=None, help="BLIP-2 or CLIP weights folder for --semantic (default: $SMT_VLM_PATH)")
    p.add_argument("--workers", type=int, default=None, help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--address", default=None, help="join this Ray cluster (e.g. 10.0.0.5:6379) instead")
    p.add_argument("--resume", action="store_true", help="skip clips whose outputs are complete")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _person_option(p, " (the same number in every video of the batch)")
    _output_options(p)
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("characters", parents=[common], help="list the characters, or import your own")
    p.add_argument("--import", dest="import_file", type=Path, default=None, metavar="FILE",
                   help="add a rigged character (.fbx/.glb) to your library")
    p.add_argument("--name", default=None, help="library name for --import (default: the file's name)")
    p.set_defaults(func=_cmd_characters)

    p = sub.add_parser("export", parents=[common], help="write a motion on a character as .fbx, .glb or .bvh")
    p.add_argument("source", metavar="motion", type=Path,
                   help="motion (.bvh, or an animated .fbx/.glb); retargeted if needed")
    p.add_argument("--character", required=True, help="character name or .fbx/.glb file")
    p.add_argument("--out", required=True, type=Path, help="output file: .fbx, .glb or .bvh")
    p.add_argument("--take", default=None, help="animation to use when the motion file has several")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _output_options(p)
    p.set_defaults(func=_cmd_job, command="export")
    return parser


# What MediaPipe's C++ side (absl logging, TensorFlow Lite) writes straight to file descriptor 2, around
# Python's logging and whatever its level: "W0000 00:00:17... file.cc:114] ...", "INFO: Created TensorFlow Lite".
_NATIVE_LOG_LINE = re.compile(rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] |INFO: Created TensorFlow Lite |"
                              rb"WARNING: All log messages before absl::InitializeLog\(\) is called)")


@contextlib.contextmanager
def _without_native_log_lines():
    """Drop MediaPipe's native log lines from stderr (``--quiet``); every other line passes, in order.

    They cannot be turned off from Python (absl logs to stderr before it is initialised; GLOG_minloglevel is not
    read), so file descriptor 2 goes through a pipe that a thread filters line by line. Only under --quiet: the
    progress bar redraws its line with carriage returns and no newline, which a line filter would hold back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as source, os.fdopen(os.dup(saved), "wb", buffering=0) as target:
            for line in source:
                if not _NATIVE_LOG_LINE.match(line):
                    target.write(line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump drains it and stops
        os.close(saved)
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s" if args.debug else "warning: %(message)s")
    from core.errors import InputError

    try:
        if getattr(args, "quiet", False) and not args.debug:
            with _without_native_log_lines():
                return args.func(args)
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
