"""Video to motion: read frames, estimate 3D landmarks, clean them, recover the root path, fit the skeleton.

:func:`video_to_motion` is the pose stage of the app (the job layer, jobs/, calls it). Its :class:`PoseResult` carries
the :class:`~core.motion.Motion` on the canonical 22-joint skeleton with the person's own bone lengths (rest =
canonical T-pose, +Z forward, Y up, metres, floor at y = 0) and everything needed to judge it: per-frame 2D/3D
landmarks, which frames had a detection, fit and reprojection errors, jitter before and after cleaning, speed.

Stages (all whole-clip numpy after the per-frame estimation):

1. decode (:mod:`pose.video`) and estimate, following one person (:mod:`pose.tracking`); measure how the
   camera turns and zooms from the background (:mod:`pose.camera_motion`); a clip of :data:`SPLIT_SECONDS` or
   more in two halves at once, on the two cores (see :func:`_estimate`);
2. refuse clips where most frames have nobody; swap back legs and arms MediaPipe mirrored; fill gaps
   (:mod:`pose.clean`);
3. root path in the camera frame from 2D + 3D landmarks and an assumed field of view (:mod:`pose.root`); with a
   camera that moved, every frame is first turned into the first frame's camera (and scaled by the zoom);
4. zero-phase filtering of the landmarks; the ground plane levels the world (:mod:`pose.clean`); knees and ankles
   set in depth so the legs project onto their 2D landmarks with constant bone lengths (:mod:`pose.limbs`);
5. bone lengths and IK (:mod:`pose.fit`); foot contacts; feet pinned to the floor (:mod:`pose.root`);
6. with ``hands=True``: the palms turn the wrists, and the fingers are fitted and cleaned (:mod:`pose.hands`); the
   motion's skeleton is then the canonical 22 joints followed by the 30 finger joints
   (:data:`core.skeleton.FINGER_JOINTS`).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from core.motion import Motion
from core.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS, canonical_skeleton, finger_offsets

from . import clean
from .camera_motion import CameraMotion, CameraMotionTracker
from .clean import NobodyError
from .estimators import LM, Estimator, make_estimator
from .feet import bridge_contacts, plant_legs
from .fit import HEAD_PITCH_KEPT, HEAD_PITCH_SECONDS, FitResult, fit_skeleton, joint_targets
from .limbs import LEG_LANDMARKS, image_consistent_legs
from .hands import HandTracks, assign_sides, fill_skipped, fit_hands, palm_landmarks
from .root import DEFAULT_FOV, FLIP, CameraModel, pin_feet, smooth_path, solve_translation
from .tracking import PersonTracker, TrackingReport
from .video import MAX_SIDE, VideoMeta, VideoReader, open_video, pose_step

__all__ = ["PoseResult", "video_to_motion", "motion_from_landmarks", "DEFAULT_SMOOTHING", "DEFAULT_HANDS",
           "HAND_LENGTH_SHARE", "PeopleInVideo", "find_people", "camera_turns"]

Progress = Callable[[float, str], None]
DEFAULT_SMOOTHING = 0.5
# On by default since the hands bench met issue 16's targets: finger error where found 8.8 / 10.2 degrees (target 15;
# fists 11, pointing 10), hands found 90.5 / 91.4 %, 34.7 frames/s with hands (target 20; the body alone 53.0);
# on the bundled sample clip, the first thing a user tries, both hands are found (100 / 93 %) and the fingers come
# out nearer the clip's own than a relaxed hand (27.9 / 22.1 degrees against 34.8 / 33.4). The cost a user waits for:
# the 10 s bench-app clip's pose stage takes 4.7 s without, 10.2 s with (both halves at once; quiet machine).
# --no-hands / the page's switch turn them off.
DEFAULT_HANDS = True
HAND_LENGTH_SHARE = 0.4  # wrist to middle knuckle, of the forearm's length (adult proportions)
# Knees and ankles set in depth from the image (pose.limbs). Cached pose_accuracy replay (tuning cases / six more
# cameras / fifteen runs / held out), knee flexion error 13.2 / 13.7 / 13.5 / 11.2 -> 11.9 / 12.8 / 12.1 / 10.0
# degrees, MPJPE 121 / 110 / 118 / 90 -> 120 / 106 / 119 / 90 mm, PA-MPJPE 78 / 87 / 85 / 55 -> 74 / 81 / 84 / 54;
# valgus 8.4 / 8.1 / 20.3 / 11.1 -> 8.4 / 9.3 / 20.0 / 11.0; skate beyond the truth's 3.7 / 13.4 / 16.3 / 35.7 ->
# 3.1 / 12.7 / 14.7 / 9.7 cm/s, but slide on the runs 11.7 -> 18.1 (run_chimpira 6.8 -> 75, its last stance let go
# three frames early; run_tired 3.0 -> 17, its first).
LEGS_FROM_IMAGE = True
# The legs so set are smoothed a little more than the rest (a window of 11 frames at 30 fps for the default 0.5, not 9):
# their depth follows the 2D landmarks' noise, steeply where a bone lies nearly across the view. Cached replay,
# as read -> so smoothed: jitter 9.99 -> 9.72 / 12.14 -> 11.71 / 27.32 -> 26.21 m/s² (before the legs came from
# the image: 9.47 / 12.00 / 27.48), lag the same or a frame shorter, knee error 11.92 -> 11.98 / 12.79 -> 12.74 / 11.82 -> 11.96.
# Their ends are padded with the end value, not fitted ("interp", as for the rest): with a fitted end the legs' noise at
# a clip's first or last frames lifted a planted foot (run_chimpira's last stance let go three frames early, skate
# beyond the truth's 0.6 -> 85 cm/s); runs 19.9 -> 14.7 cm/s (16.3 before the legs came from the image).
LEG_SMOOTHING = 1.2
_J = {n: k for k, n in enumerate(CANONICAL_JOINTS)}
_FEET = (("left", "Left"), ("right", "Right"))
_SOLE = [LM[f"{s}_{k}"] for s, _ in _FEET for k in ("heel", "foot_index")]


def _body_axis(P: np.ndarray) -> np.ndarray:
    """``(T, 3)`` ankles' midpoint to shoulders' midpoint of ``(T, 33, 3)`` landmarks."""
    return (0.5 * (P[:, LM["left_shoulder"]] + P[:, LM["right_shoulder"]])
            - 0.5 * (P[:, LM["left_ankle"]] + P[:, LM["right_ankle"]]))


@dataclass
class PoseResult:
    """The pose stage's output (arrays are per decoded frame, ``T`` of them).

    motion: the fitted motion (canonical skeleton, the person's bone lengths, root path, the clip's fps).
    video: what the reader found out about the file (sizes, rotation, trim); None from landmarks alone.
    image_landmarks: ``(T, 33, 2)`` raw 2D landmarks, pixels of the processed frame (NaN where nobody was found).
    world_landmarks: ``(T, 33, 3)`` raw 3D landmarks, metres, hip-centred, world axes (Y up, levelled).
    visibility: ``(T, 33)``. detected: ``(T,)`` frames with the followed person.
    joints_2d: ``(T, 22, 2)`` the fitted skeleton projected into the frames, pixels, on the camera model's root
        path (before the feet were pinned: the overlay shows how the pose fits the image).
    contacts: ``(T, 2)`` left/right foot planted.
    camera: the assumed camera and the floor it found.
    fit: the skeleton fit of the final motion (bone lengths, per-joint errors against the planted landmarks).
    fit_error: mean distance between the cleaned landmarks and the fitted joints, metres (hip-centred), before
        planted legs were moved to their spots (how well the skeleton matches what MediaPipe saw).
    planting_shift: the same for the final motion: the fit error plus how far planting moved the legs from
        MediaPipe's (short strides lengthened, planted feet held still), metres.
    fit_error_raw: the same against the unfiltered landmarks, metres.
    reprojection_error: mean 2D distance between detected landmarks and projected joints, pixels.
    reprojection_error_unpinned: the same before the feet were pinned (the pose and the camera model alone;
        pinning keeps the feet on a level floor, which costs image alignment where MediaPipe's 3D pose and the
        floor the feet trace disagree).
    jitter_before, jitter_after: mean joint acceleration, m/s², of the raw landmarks (with the raw root path)
        and of the final motion's joints.
    bone_length_variation: largest standard deviation of a bone's length over time in the motion, metres.
    root_correction: ``(T, 3)`` how far the foot pinning moved the root, metres.
    fps: the clip's measured frame rate, as read (a 60 fps clip is read at 30: :func:`~pose.video.pose_step`).
    seconds: wall time per stage. warnings: things the user should know.
    camera_motion: how the camera turned and zoomed (measured from the background; still for landmarks alone).
    hands: the hands' landmarks, where they were found, and the finger rotations; None when not asked for.
    """

    motion: Motion
    video: VideoMeta | None
    image_landmarks: np.ndarray
    world_landmarks: np.ndarray
    visibility: np.ndarray
    detected: np.ndarray
    joints_2d: np.ndarray
    contacts: np.ndarray
    camera: CameraModel
    fit: FitResult
    fit_error: float
    planting_shift: float
    fit_error_raw: float
    reprojection_error: float
    reprojection_error_unpinned: float
    jitter_before: float
    jitter_after: float
    bone_length_variation: float
    root_correction: np.ndarray
    fps: float
    tracking: TrackingReport
    camera_motion: CameraMotion | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    hands: HandTracks | None = None

    @property
    def num_frames(self) -> int:
        return len(self.detected)

    @property
    def source_fps(self) -> float:
        """The clip's own frame rate: :attr:`fps` times the step it was read at (``video.step``), the rate the job
        writes its files at."""
        return self.fps * (self.video.step if self.video is not None else 1)

    @property
    def detection_rate(self) -> float:
        return float(np.mean(self.detected)) if len(self.detected) else 0.0

    @property
    def frames_per_second(self) -> float:
        """Processing speed of the whole stage (decoding to fitted motion), frames per wall-clock second."""
        total = sum(self.seconds.values())
        return self.num_frames / total if total > 0 else float("inf")

    def summary(self) -> str:
        return (f"{int(self.detected.sum())}/{self.num_frames} frames with a person ({100 * self.detection_rate:.0f} %)"
                f", fit error {100 * self.fit_error:.2f} cm (vs raw landmarks {100 * self.fit_error_raw:.2f} cm; "
                f"{100 * self.planting_shift:.2f} cm with the planted legs), "
                f"reprojection {self.reprojection_error:.1f} px ({self.reprojection_error_unpinned:.1f} px before "
                f"pinning the feet), jitter {self.jitter_before:.1f} -> {self.jitter_after:.1f} m/s², "
                f"{self.frames_per_second:.1f} frames/s"
                + ("" if self.hands is None else ", hands found in {:.0f} % / {:.0f} % of frames (left / right)".format(
                    *100 * self.hands.found_rate)))


def _no_progress(fraction: float, stage: str) -> None:
    pass


def _rotation_to_y(up: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit ``up`` onto +Y (keeps the camera's heading)."""
    from scipy.spatial.transform import Rotation

    y = np.array([0.0, 1.0, 0.0])
    axis = np.cross(up, y)
    s, c = np.linalg.norm(axis), float(up @ y)
    if s < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    return Rotation.from_rotvec(axis / s * np.arctan2(s, c)).as_matrix()


def camera_turns(camera_motion: CameraMotion | None, T: int) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 3, 3)`` camera turns (frame ``t``'s camera axes into the first frame's) and ``(T,)`` zoom that the
    pipeline applies: identity and ones unless the camera moved (:meth:`CameraMotion.moved`)."""
    if camera_motion is None or not camera_motion.moved() or len(camera_motion.zoom) < T:
        return np.tile(np.eye(3), (T, 1, 1)), np.ones(T)
    return camera_motion.rotations[:T], camera_motion.zoom[:T]


def _turned(turns: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(T, ..., 3)`` points of each frame's camera axes in the first frame's (``turns (T, 3, 3)``)."""
    T = len(turns)
    return np.einsum("tij,tnj->tni", turns, points.reshape(T, -1, 3)).reshape(points.shape)


def _steadied_rays(image: np.ndarray, turns: np.ndarray, zoom: np.ndarray, camera: CameraModel) -> np.ndarray:
    """``(T, N, 3)`` unit viewing rays of pixels ``(T, N, 2)`` in the first frame's camera axes."""
    rays = np.concatenate([(image - (camera.cx, camera.cy)) / (camera.focal * zoom[:, None, None]),
                           np.ones(image.shape[:-1] + (1,))], axis=-1)
    r = _turned(turns, rays)
    return r / np.linalg.norm(r, axis=-1, keepdims=True)


def _steadied(image: np.ndarray, turns: np.ndarray, zoom: np.ndarray, camera: CameraModel) -> np.ndarray:
    """``(T, N, 2)`` pixels as the first frame's camera would see them (a panning camera's still scene stays put)."""
    rays = np.concatenate([(image - (camera.cx, camera.cy)) / (camera.focal * zoom[:, None, None]),
                           np.ones(image.shape[:-1] + (1,))], axis=-1)
    r = _turned(turns, rays)
    return camera.focal * r[..., :2] / r[..., 2:] + (camera.cx, camera.cy)


def _project(camera: CameraModel, world: np.ndarray, turns: np.ndarray, zoom: np.ndarray) -> np.ndarray:
    """``(T, N, 2)`` pixels of world points in each frame's own (turned, zoomed) camera; NaN behind it."""
    c = np.einsum("tji,tnj->tni", turns, camera.to_camera(world))  # turns are orthonormal: transpose = inverse
    z = np.where(c[..., 2] > 1e-6, c[..., 2], np.nan)
    f = camera.focal * zoom[:, None]
    return np.stack([f * c[..., 0] / z + camera.cx, f * c[..., 1] / z + camera.cy], axis=-1)


def _targets_2d(image: np.ndarray) -> np.ndarray:
    """``(T, 22, 2)`` image positions of the joints that have landmarks (NaN elsewhere)."""
    return joint_targets(image)[0]


@dataclass
class PeopleInVideo:
    """The people in the first frame with anyone in it, numbered as the job's tracker numbers them.

    frame_index: that frame, counted from the trim start (-1: nobody in the part searched). time: its time from
    the trim start, seconds. rgb: ``(H, W, 3)`` the frame as the pose stage sees it. boxes: ``(N, 4)`` pixel boxes
    ``x0, y0, x1, y1`` of persons 1..N (left to right). suggested: the person a job follows when the user does
    not pick (1-based; 0 when nobody was found). searched_seconds: how much of the clip was searched.
    """

    frame_index: int
    time: float
    rgb: np.ndarray | None
    boxes: np.ndarray
    suggested: int
    searched_seconds: float

    @property
    def count(self) -> int:
        return len(self.boxes)

    def describe(self) -> list[str]:
        """One line per person, for the CLI: number, where in the frame, how tall."""
        if not self.count:
            return [f"nobody was found in the first {self.searched_seconds:.0f} s"]
        H, W = self.rgb.shape[:2]
        out = []
        for k, (x0, y0, x1, y1) in enumerate(self.boxes, 1):
            where = "left" if (x0 + x1) / 2 < W / 3 else "right" if (x0 + x1) / 2 > 2 * W / 3 else "centre"
            out.append(f"person {k}: {where}, box x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px of {W}x{H}, "
                       f"{100 * (y1 - y0) / H:.0f} % of the frame's height"
                       + (" (followed unless you pick another)" if k == self.suggested else ""))
        return out


def find_people(path: str | Path, *, trim: tuple[float | None, float | None] | None = None,
                estimator: Estimator | str = "mediapipe", max_side: int = MAX_SIDE,
                search_seconds: float = 10.0) -> PeopleInVideo:
    """The people a job on this clip would choose from (same frames, same search, same numbering as
    :class:`~pose.tracking.PersonTracker`), so the user can pick one before the job runs.

    Searches frames in order from the trim start until someone is found, for at most ``search_seconds``.

    Raises:
        InputError: (subclasses) unreadable video, backend missing.
    """
    from .tracking import choose_person

    reader = open_video(path, trim=trim, max_side=max_side)
    fps = reader.meta.header_fps or 30.0
    own = isinstance(estimator, str)
    est = make_estimator(estimator) if isinstance(estimator, str) else estimator
    tracker = PersonTracker(est, fps=fps)
    frames = reader.frames()
    try:
        for frame in frames:
            if frame.index / fps > search_seconds:
                break
            people = tracker.people_in(frame.rgb, frame.index)
            if people:
                H, W = frame.rgb.shape[:2]
                return PeopleInVideo(frame.index, frame.index / fps, frame.rgb, np.array([p.box() for p in people]),
                                     choose_person(people, W, H) + 1, frame.index / fps)
    finally:
        frames.close()
        if own:
            est.close()
    return PeopleInVideo(-1, 0.0, None, np.zeros((0, 4)), 0, search_seconds)


def _people_warning(report: TrackingReport, fps: float) -> str | None:
    """What the report says about the people in view (None for one person all along)."""
    if not report.several_people:
        return None
    n = len(report.people)
    at = f"{n} in the first frame with people ({report.first_frame / fps:.1f} s), " if n > 1 else ""
    seen = (f"several people were seen ({at}up to {report.people_seen} at once, in {report.frames_with_others} of "
            f"{report.surveys} checked frames)")
    if report.chosen_by_user:
        return f"{seen}; person {report.chosen} (numbered left to right), as asked, was followed"
    if n > 1:
        return (f"{seen}; nobody was picked, so person {report.chosen} of {n} (numbered left to right), the "
                f"largest and most central, was followed: if that is the wrong person, pick one on the page or "
                f"pass --person N (`app.py people VIDEO` lists them)")
    return f"{seen}; the person found first was followed"


# A clip this long (seconds) is estimated in two halves at once, each on its own core (see _estimate).
SPLIT_SECONDS = 4.0
# Frames the second half estimates before the seam and drops, so its trackers (MediaPipe's own, the hands') have
# settled by then: without, on the hands bench's gesture clip the hands were found in 87 / 89 % of frames against
# 91 / 92 % in one pass; with 30, 90.5 / 91.4 % (the sample clip 100 / 93 % against 99 / 94 %), and the body on the
# 10 s bench-app clip came within 1.4 mm (mean) of one pass instead of 2.4.
WARM = 30


def _follow(frames, tracker: PersonTracker, camera: CameraMotionTracker, until: int | None = None,
            done: list[int] | None = None, stop: Callable[[], bool] | None = None,
            tick: Callable[[int], None] | None = None) -> list:
    """Follow the person through ``frames`` (an iterator of :class:`~pose.video.Frame`) up to frame index ``until``
    (excluded; None: to the end). ``done[0]`` counts the frames; ``tick(index)`` hears of each; ``stop()`` true
    ends early."""
    poses, box = [], None
    for frame in frames:
        if (until is not None and frame.index >= until) or (stop is not None and stop()):
            break
        poses.append(tracker.step(frame.rgb, frame.index))
        box = poses[-1].box() if poses[-1] is not None else box
        camera.step(frame.rgb, box)
        if done is not None:
            done[0] += 1
        if tick is not None:
            tick(frame.index)
    return poses


def _same_person(a, b) -> bool:
    """Whether two poses of one frame (or None) are the same person: both missing, or boxes overlapping by half."""
    if a is None or b is None:
        return a is None and b is None
    x0, y0 = np.maximum(a.box()[:2], b.box()[:2])
    x1, y1 = np.minimum(a.box()[2:], b.box()[2:])
    inter = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    area = lambda p: float(np.prod(np.maximum(p.box()[2:] - p.box()[:2], 0.0)))  # noqa: E731
    return inter > 0.5 * min(area(a), area(b))


def _chained(first: CameraMotion, second: CameraMotion, at: int = 0) -> CameraMotion:
    """One clip's camera motion from its first part's and the rest's, whose frame ``at`` is the first part's last
    (the rest's earlier frames are dropped)."""
    turn = first.rotations[-1] @ second.rotations[at].T  # the rest's axes into the first frame's
    zoom = first.zoom[-1] / second.zoom[at]
    return CameraMotion(np.concatenate([first.rotations, turn @ second.rotations[at + 1:]]),
                        np.concatenate([first.zoom, zoom * second.zoom[at + 1:]]),
                        np.concatenate([first.measured, second.measured[at + 1:]]))


def _estimate(reader, estimator: Estimator, progress: Progress, person: int | None = None,
              fov: float = DEFAULT_FOV, second: Callable[[], Estimator] | None = None
              ) -> tuple[list, TrackingReport, CameraMotion]:
    """Estimate every frame, following one person, and measure the camera's motion.

    With ``second`` (makes another estimator like ``estimator``) and a clip of :data:`SPLIT_SECONDS` or more, the
    second half is estimated at the same time on another thread, from :data:`WARM` frames before the half (decoded
    by a second reader that counts its way there): the pose stage otherwise keeps one of the two cores busy (1.14
    cores measured on the 10 s bench clip), and MediaPipe lets go of the GIL while it works. The halves are joined
    when they followed one person who is the same at the seam (boxes overlapping by half in the shared frame);
    when either half saw several people, or the seam differs, or a person was picked by number (numbers belong to
    the clip's first frame), the first half's tracker goes on through the rest instead, as one pass would; the
    second half stops as soon as either tracker has seen several people. Measured: a one-person 10 s 720p clip 8.45
    -> 5.5-6.3 s; the shared studio clip with three people in view (8 s, 50 fps), which falls back, 11.7 -> 12.6 s
    (the second half ran a while before the first tracker's survey saw the others). The second half's trackers
    settle over the :data:`WARM` frames before the seam, which it drops (see there for what they are worth).
    """
    meta = reader.meta
    fps = meta.read_fps
    tracker = PersonTracker(estimator, fps=fps, person=person)
    focal = CameraModel.from_fov(meta.width, meta.height, fov).focal
    camera = CameraMotionTracker(meta.width, meta.height, focal)
    expected = max(meta.read_frames - int(meta.start * fps), 1)
    if meta.end is not None and meta.header_fps > 0:
        expected = max(1, int((meta.end - meta.start) * fps))
    half = expected // 2 if second is not None and person is None and expected >= SPLIT_SECONDS * fps else None
    done, done_b = [0], [0]  # frames estimated by this thread and by the second half's

    def tick(index: int) -> None:
        if index % 15 == 0:
            count = done[0] + done_b[0]
            progress(0.9 * min(count / expected, 1.0), f"pose estimation: frame {count}")

    if half is None:
        poses = _follow(reader.frames(), tracker, camera, done=done, tick=tick)
        return poses, tracker.report, camera.result(len(poses))

    stop = threading.Event()
    rest_reader = VideoReader(meta, reader.max_seconds)
    warm = min(WARM, half - 1)

    def rest() -> tuple[list, TrackingReport, CameraMotion]:
        est = second()
        try:
            tracker_b = PersonTracker(est, fps=fps)
            camera_b = CameraMotionTracker(meta.width, meta.height, focal)
            # Several people: the halves will not be joined (see above), so the second stops at once.
            poses_b = _follow(rest_reader.frames(skip=half - 1 - warm), tracker_b, camera_b, done=done_b,
                              stop=lambda: stop.is_set() or tracker_b.report.several_people)
            return poses_b, tracker_b.report, camera_b.result(len(poses_b))
        finally:
            est.close()

    with ThreadPoolExecutor(1, thread_name_prefix="pose-second-half") as pool:
        future = pool.submit(rest)
        try:
            def tick_first(index: int) -> None:
                if tracker.report.several_people:  # see the second half's stop
                    stop.set()
                tick(index)

            poses = _follow(reader.frames(), tracker, camera, until=half, done=done, tick=tick_first)
            while True:  # the bar keeps moving while the second half finishes
                try:
                    poses_b, report_b, camera_b = future.result(timeout=0.5)
                    break
                except TimeoutError:
                    tick(0)
        finally:
            stop.set()
    first = tracker.report
    if (len(poses) == half and len(poses_b) > warm and not first.several_people and not report_b.several_people
            and _same_person(poses[-1], poses_b[warm])):
        reader.stats = rest_reader.stats  # it decoded (or counted) every frame of the clip
        first.surveys += report_b.surveys
        first.rejected += report_b.rejected
        return poses + poses_b[warm + 1:], first, _chained(camera.result(len(poses)), camera_b, warm)
    # Someone else at the seam, or several people in view: the first half's tracker goes on, as one pass would.
    done_b[0] = 0
    poses += _follow(reader.frames(skip=len(poses)), tracker, camera, done=done, tick=tick)
    return poses, tracker.report, camera.result(len(poses))


def video_to_motion(path: str | Path, *, smoothing: float = DEFAULT_SMOOTHING,
                    trim: tuple[float | None, float | None] | None = None, progress: Progress | None = None,
                    estimator: Estimator | str = "mediapipe", fov: float = DEFAULT_FOV, max_side: int = MAX_SIDE,
                    max_seconds: float | None = None, person: int | None = None,
                    hands: bool = DEFAULT_HANDS) -> PoseResult:
    """The motion of the person in a video (see the module docstring).

    Args:
        path: the video file.
        smoothing: filter strength in [0, 1] (0 = none; see :func:`pose.clean.smoothing_window`).
        trim: ``(start, end)`` seconds; either may be None.
        progress: ``progress(fraction, stage)`` callback.
        estimator: an :class:`~pose.estimators.Estimator` or a backend name.
        fov: assumed field of view across the frame's long side, degrees (default: a phone's main camera).
        max_side: frames are downscaled to this long side. max_seconds: clip length limit (default 10 min).
        person: who to follow when several people are in view: their number in the first frame with anyone in
            it, left to right from 1 (:func:`find_people` lists them); None: the largest, most central one.
        hands: also track both hands and fit the fingers (an estimator passed in must have been made with hands
            on, e.g. ``make_estimator("mediapipe", hands=True)``).

    Raises:
        InputError: (subclasses) unreadable video, clip too long, nobody found in most frames, backend missing,
            ``person`` beyond the number of people found.
    """
    progress = progress or _no_progress
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be within [0, 1], got {smoothing}")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    kwargs = {} if max_seconds is None else {"max_seconds": max_seconds}
    reader = open_video(path, trim=trim, max_side=max_side, **kwargs)
    # The lower of the first frames' rate and the header's: either can be wrong, and reading more is only slower.
    rate = min(reader.opening_fps(), reader.meta.header_fps or float("inf"))
    reader = VideoReader(replace(reader.meta, step=pose_step(rate)), reader.max_seconds)
    meta = reader.meta
    progress(0.0, "reading video")
    own = isinstance(estimator, str)
    options = {"hands": True} if hands else {}
    est = make_estimator(estimator, **options) if own else estimator
    try:
        poses, report, camera_motion = _estimate(reader, est, progress, person, fov,
                                                 second=(lambda: make_estimator(estimator, **options)) if own else None)
    finally:
        if own:
            est.close()
    seconds["decode+estimate"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    progress(0.9, "cleaning and fitting")
    warnings = list(reader.stats.warnings)
    fps = reader.stats.fps(meta.read_fps)
    if reader.stats.variable_rate():
        warnings.append(f"the video has a variable frame rate; it was treated as a steady {fps:.2f} fps")
    if meta.step > 1:
        warnings.append(f"the {fps * meta.step:.0f} fps video was read at {fps:.0f} fps (every {meta.step} frames "
                        f"one: a person's motion needs no more, and the pose stage takes {meta.step}x less); the "
                        f"files are written at {fps * meta.step:.0f} fps")

    T = len(poses)
    detected = np.array([p is not None for p in poses], bool)
    try:
        clean.check_detections(detected, fps)
    except NobodyError as exc:
        if not report.several_people:
            raise
        raise NobodyError(f"{exc}; {report.people_seen} people were in view, too small to follow one of them: "
                          "crop or trim the video to one person") from None
    image = np.full((T, 33, 2), np.nan)
    world_cam = np.full((T, 33, 3), np.nan)
    vis = np.zeros((T, 33))
    hand_lms = np.full((T, 2, 21, 3), np.nan) if hands else None
    hand_world = np.full((T, 2, 21, 3), np.nan) if hands else None
    for t, p in enumerate(poses):
        if p is not None:
            image[t], world_cam[t], vis[t] = p.image, p.world, p.visibility
            if hand_lms is not None and p.hands is not None:
                hand_lms[t] = p.hands
            if hand_world is not None and p.hands_world is not None:
                hand_world[t] = p.hands_world
    looked = np.array([p is not None and p.hands is not None for p in poses], bool)
    if hands and not looked.any():
        warnings.append("the pose backend gave no hand landmarks; the fingers were left relaxed")
    elif hands:
        hand_lms, hand_world = fill_skipped(hand_lms, looked), fill_skipped(hand_world, looked)
    people = _people_warning(report, fps)
    if people:
        warnings.append(people)
    if camera_motion.moved():
        warnings.append(f"the camera moved (it {camera_motion.describe()}, measured from the background in "
                        f"{int(camera_motion.measured.sum())} of {T - 1} frame pairs): the person's path was "
                        f"corrected for it; a camera carried along (not only turned) still adds its own travel")
    result = motion_from_landmarks(image, world_cam, vis, fps, meta.width, meta.height, smoothing=smoothing,
                                   fov=fov, name=Path(path).stem, camera_motion=camera_motion,
                                   hands=hand_lms, hands_world=hand_world)
    seconds["clean+fit"] = time.perf_counter() - t1
    progress(1.0, "pose done")
    return replace(result, video=meta, tracking=report, camera_motion=camera_motion, seconds=seconds,
                   warnings=warnings + result.warnings)


def motion_from_landmarks(image: np.ndarray, world_cam: np.ndarray, vis: np.ndarray, fps: float, width: int,
                          height: int, *, smoothing: float = DEFAULT_SMOOTHING, fov: float = DEFAULT_FOV,
                          name: str = "", camera_motion: CameraMotion | None = None,
                          hands: np.ndarray | None = None, hands_world: np.ndarray | None = None) -> PoseResult:
    """Stages 2-5 (see the module docstring) on landmark tracks: the part of the pipeline after estimation.

    Args:
        image: ``(T, 33, 2)`` pixels, NaN in frames without a detection.
        world_cam: ``(T, 33, 3)`` metric, hip-centred landmarks in camera axes (x right, y down, z away).
        vis: ``(T, 33)`` visibility. fps: frame rate. width, height: frame size, pixels.
        camera_motion: the camera's turn and zoom per frame; when it moved, every frame's landmarks and root are
            put in the first frame's camera before the rest (None or a still camera: nothing changes).
        hands: ``(T, 2, 21, 3)`` hand landmarks (pixels, camera axes, NaN where not found; see
            :class:`~pose.estimators.PoseFrame`), or None for a body-only motion. hands_world: the same hands as
            the model's metric landmarks (optional; see :func:`pose.hands.fit_hands`).

    Raises:
        NobodyError: when most frames have no detection.
    """
    T = len(image)
    detected = np.isfinite(image).all(axis=(1, 2)) & np.isfinite(world_cam).all(axis=(1, 2))
    clean.check_detections(detected, fps)
    warnings: list[str] = []
    image, world_cam, vis = clean.untangle_person(image, world_cam, vis, detected)  # before anything reads the limbs
    long_gaps = [(s, e) for s, e in clean.gaps(detected) if (e - s) / fps > clean.MAX_GAP_SECONDS and 0 < s and e < T]
    if long_gaps:
        spans = ", ".join(f"{s / fps:.1f}-{e / fps:.1f} s" for s, e in long_gaps[:5])
        warnings.append(f"nobody was found for more than {clean.MAX_GAP_SECONDS:g} s at {spans}; the motion there "
                        f"is interpolated")
    if hands is not None:
        hands = np.where(detected[:, None, None, None], hands, np.nan)
        world_cam = palm_landmarks(world_cam, assign_sides(hands, image, fps))  # the palms turn the wrists
    image_f = clean.fill_gaps(image, detected)
    world_own = clean.fill_gaps(world_cam, detected)  # each frame in its own camera's axes
    vis_f = np.where(detected[:, None], vis, 0.05)
    turns, zoom = camera_turns(camera_motion, T)
    world_f = _turned(turns, world_own)  # every frame in the first frame's camera axes

    # Root path in the camera frame, then the landmarks filtered, the world levelled (floor at y = 0).
    local_s = clean.smooth(world_f, fps, smoothing)
    # How fast each landmark moves across the view, radians per second: the steadied viewing rays' turn (a
    # panning camera's still scene stays still), times the distance below gives metres per second. Measured
    # as pixels of the first frame's camera, a camera turned 45 degrees doubled a foot's speed and its noise
    # at the frame's side, and the feet there were never planted.
    rays = _steadied_rays(image_f, turns, zoom, CameraModel.from_fov(width, height, fov))
    rays_s = clean.smooth(rays, fps, max(smoothing, 0.3))
    ang_speed = np.linalg.norm(np.gradient(rays_s / np.linalg.norm(rays_s, axis=-1, keepdims=True), axis=0),
                               axis=-1) * fps  # (T, 33)

    def root_path(fov_deg: float) -> tuple[CameraModel, np.ndarray, np.ndarray]:  # (camera, raw, smoothed)
        cam = CameraModel.from_fov(width, height, fov_deg)
        # Solved and smoothed in each frame's own camera (where the 2D landmarks are, and the noisy depth is
        # along the view), then turned into the first one's; a zoom by z makes the person look z times closer.
        t_own = solve_translation(world_own, image_f, vis_f, cam) * zoom[:, None]
        t_smooth = smooth_path(t_own, fps) if smoothing > 0 else t_own
        return cam, _turned(turns, t_own), _turned(turns, t_smooth)

    camera, t_raw, t_smooth = root_path(fov)
    up_cam = clean.level_up(_body_axis(local_s @ FLIP.T), t_smooth @ FLIP.T, fps)  # see its docstring
    speed = ang_speed * np.linalg.norm(t_smooth, axis=-1)[:, None]  # metres per second across the view
    G = (local_s + t_smooth[:, None]) @ FLIP.T
    floor = clean.floor_height(G[:, _SOLE], up_cam, speed[:, _SOLE] < 0.3)
    R = _rotation_to_y(up_cam)
    camera = CameraModel(camera.focal, camera.cx, camera.cy, camera.width, camera.height, R, floor)
    to_world = R @ FLIP
    local_w = local_s @ to_world.T
    hips_w = camera.to_world(t_smooth)
    if LEGS_FROM_IMAGE:  # after the floor and the level, which stay MediaPipe's (see pose.limbs)
        own = _turned(np.swapaxes(turns, 1, 2), t_smooth) / zoom[:, None]  # the root as solved, in its own camera
        legs = _turned(turns, image_consistent_legs(world_own, image_f, vis_f, own, camera))[:, LEG_LANDMARKS]
        local_w[:, LEG_LANDMARKS] = clean.smooth(legs, fps, LEG_SMOOTHING * smoothing, mode="nearest") @ to_world.T

    local_w = clean.hands_out_of_trunk(local_w, fps)  # a far wrist seen inside the trunk (see pose.clean)
    head = dict(head_pitch_kept=HEAD_PITCH_KEPT, head_pitch_sigma=HEAD_PITCH_SECONDS * fps)  # see pose.fit
    fit = fit_skeleton(local_w, vis_f, **head)
    X = fit.positions + hips_w[:, None]  # world joints before pinning
    L = fit.lengths

    # Foot contacts and pinning.
    sole_h = np.zeros((T, 2))
    anchors = np.zeros((T, 2, 3))
    foot_speed = np.zeros((T, 2))
    for f, (lo, S) in enumerate(_FEET):
        ankle, toe = X[:, _J[f"{S}Foot"]], X[:, _J[f"{S}ToeBase"]]
        sole_h[:, f] = np.minimum(ankle[:, 1] - L.ankle_height, toe[:, 1])
        anchors[:, f] = 0.5 * (ankle + toe)
        foot_speed[:, f] = speed[:, [LM[f"{lo}_heel"], LM[f"{lo}_ankle"], LM[f"{lo}_foot_index"]]].min(axis=1)
    rel_h = sole_h - sole_h.min(axis=1, keepdims=True)  # from the pose alone: free of the root's depth noise
    rel_h = np.where(sole_h < 0.25, rel_h, 1.0)
    contacts = clean.foot_contacts(rel_h, foot_speed, fps)
    contacts = bridge_contacts(local_w + hips_w[:, None], contacts, fps, heights=rel_h)  # a still foot lost a moment
    # The root comes down or up so planted feet touch the floor; along the floor it keeps the camera's path (its
    # speed is right, MediaPipe's strides are short), and the planted legs reach their spots instead (pose.feet).
    _, corr = pin_feet(hips_w + fit.positions[:, 0], anchors, sole_h, contacts, fps, horizontal=False)
    landmarks_fit = fit
    planted, _ = plant_legs(local_w + (hips_w + corr)[:, None], contacts, fit.lengths, fps=fps)
    fit = fit_skeleton(planted - (hips_w + corr)[:, None], vis_f, lengths=fit.lengths, **head)
    planting_shift = float(np.nanmean(np.linalg.norm(fit.positions - landmarks_fit.targets, axis=-1)))
    root = hips_w + corr + fit.positions[:, 0]
    motion = Motion(canonical_skeleton(fit.offsets), fit.rotations, root, fps, name)
    hand_tracks = None
    if hands is not None:
        hand_tracks = fit_hands(hands, image, fps, smoothing, hands_world)
        offsets = np.vstack([fit.offsets, finger_offsets(HAND_LENGTH_SHARE * L.forearm)])
        motion = Motion(canonical_skeleton(offsets), np.concatenate([fit.rotations, hand_tracks.rotations], axis=1),
                        root, fps, name)

    # Numbers.
    final = fit.positions - fit.positions[:, :1] + root[:, None]
    joints_2d = _project(camera, final, turns, zoom)
    t2d = _targets_2d(image)
    reproj = float(np.nanmean(np.linalg.norm(joints_2d - t2d, axis=-1)[detected]))
    joints_2d = _project(camera, fit.positions - fit.positions[:, :1] + (hips_w + fit.positions[:, 0])[:, None],
                         turns, zoom)
    reproj_unpinned = float(np.nanmean(np.linalg.norm(joints_2d - t2d, axis=-1)[detected]))
    raw_targets, mask = joint_targets(world_f @ to_world.T)
    raw_err = np.linalg.norm(landmarks_fit.positions[:, mask] - raw_targets[:, mask], axis=-1)
    raw_global = joint_targets((world_f + t_raw[:, None]) @ FLIP.T @ R.T)[0][:, mask]
    bones = np.linalg.norm(final[:, 1:] - final[:, list(CANONICAL_PARENTS[1:])], axis=-1)
    return PoseResult(
        motion=motion, video=None, image_landmarks=image, world_landmarks=_turned(turns, world_cam) @ to_world.T,
        visibility=vis, detected=detected, joints_2d=joints_2d, contacts=contacts, camera=camera, fit=fit,
        fit_error=landmarks_fit.mean_error, planting_shift=planting_shift, fit_error_raw=float(np.mean(raw_err[detected])), reprojection_error=reproj,
        reprojection_error_unpinned=reproj_unpinned,
        jitter_before=clean.jitter(raw_global, fps), jitter_after=clean.jitter(final[:, mask], fps),
        bone_length_variation=float(bones.std(axis=0).max()), root_correction=corr,
        fps=fps, tracking=TrackingReport(), warnings=warnings, hands=hand_tracks)
