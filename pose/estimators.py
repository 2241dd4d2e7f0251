"""Pose estimators: the :class:`Estimator` interface, MediaPipe (embedded default) and an optional ONNX backend.

Every backend speaks the 33-landmark BlazePose topology (:data:`LANDMARKS`), the richest one that comes
embedded: it has heels, toes, index/pinky knuckles and ears, which the fit needs for feet, hands and head.

Conventions of a :class:`PoseFrame`:

* ``image``: ``(33, 2)`` pixel coordinates in the frame that was passed in (x right, y down, pixel centres at .5);
* ``world``: ``(33, 3)`` metres, origin midway between the hips, *camera-aligned* axes (x to the image's right,
  y down, z away from the camera): MediaPipe's world landmarks, which are not gravity-aligned;
* ``visibility``: ``(33,)`` in [0, 1];
* ``hands``: ``(2, 21, 3)`` the person's two hands (:data:`HAND_LANDMARKS`) in no particular order (which is left
  is told later from the body's wrists, :func:`pose.hands.side_sources`), pixel x and y as above and a relative
  depth z in pixels (away from the camera, MediaPipe's z scaled like x), NaN for a hand not found; None when hands
  were not asked for or the hand model skipped the frame (:data:`HAND_STRIDE`); ``hands_world``: the same hands as
  the hand model's metric 3D landmarks (metres, camera axes, origin inside the hand).

Hands come from MediaPipe's hand models (also in the 0.10.21 wheel: palm detector + hand landmark model), two
hand tracks per clip. A track follows its hand with the landmark model alone, in the box the previous frame's
landmarks give (:func:`hand_roi`, as MediaPipe's hands solution tracks), moved as the body's wrist moved since
(:func:`wrist_travel`), with the solution's presence threshold; a lost track looks again with the hands
solution (palm detector, then landmarks) on square crops around a body wrist, where the hand was last seen and
around the elbow. Measured against the Holistic graph (body + face + hands on crops placed by the body's
landmarks), pose stage alone on 100 frames: on the repo's rendered gesture clip at 1280x720, crops 19.3 frames/s
with hands found 88 % / 100 % (left / right), Holistic 10.1 frames/s with 38 % / 71 % (its face model keeps failing
on a featureless head), body alone 21.5 (load 5.6); on mmpose_body3d_demo at 720 px, crops 20.6 frames/s with 66 % /
72 %, Holistic 25.7 with 60 % / 86 %, body alone 45 (load 0.7). Crops find more hands where it matters and do not
depend on a face.

Second round (issue 16; load 3-8 on 2 cores, shared). Before, the crops also tracked: the hands solution's own
tracker on a crop that followed the body's wrist, so its box jumped whenever the crop moved or changed size, and a
lost hand tried every crop with a palm detection each, 2.9-3.4 model calls a frame; the tracks had fixed sides, and
the body model swapping or misplacing a wrist sent both onto one hand. Tracking in the image with the landmark model
alone, and a lost track looking at the wrist the other track is not on: the gesture bench clip 67/92 -> 78/98 %
found (left / right), finger error where found 22.4/20.8 -> 21.0/21.1 degrees, calls 3.43 -> 2.41 a frame; the
sample clip 89/71 -> 93/77 %. A hand model call costs 0.5-0.75 of a body model call (17-28 ms against 25-39 ms), so
one call per hand and frame still took 2.0 times the body alone. The hand model on every second frame
(:data:`HAND_STRIDE`; landmarks in between interpolated, :func:`pose.hands.fill_skipped`), same window, load 3:
gesture clip 17.3 -> 25.4 frames/s (body alone 36.7), found 78/98 -> 92/96 %, error where found 21.0/21.1 ->
19.2/21.7; sample clip 14.4 -> 19.1 frames/s (body 34.2), found 93/77 -> 99/71 %. (With the old crop tracking, every
second frame had lost hands: 67 -> 52 %.) Tried and not kept: both sides in two threads (no gain with the cores
shared); crops of 1.4 or 1.2 forearms instead of 2 (fewer found on both clips: sample 89/71 -> 82/71 and 78/69 %).
The sample clip's squatting right fist (about 30 px, side on) sits inside its wrist's crop, unoccluded (looked at);
it looked as if the models did not see it (they did: see the third round).

Third round: the tracking box of a fist was MediaPipe's (its folded middle joints, doubled), too small for a finger
stretched out of the fist, and for the fist itself; boxed as if its fingers were open (:func:`hand_roi`), the gesture
clip's error where found went 19.2 / 21.7 -> 16.7 / 19.3 degrees with the old fit (fist 49 -> 32, point 28 -> 25),
found 92 / 96 -> 93 / 91 %; the sample clip 99 / 71 -> 99 / 68 % (landmarks replayed through the same fit). How far
an open finger's middle joint is taken (:data:`OPEN_PIP_REACH`, with the final fit and specks): 0.2 / 0.3 / 0.45 /
0.6 of the wrist-to-knuckle length gave 21.1 / 8.6 / 8.6 / 8.3 degrees where found on the left hand, 12.4 / 11.1 /
10.9 / 14.1 on the right, found 88 / 92 / 93 / 95 % and 96 / 96 / 91 / 91 %; the sample clip 0.3: found 99 / 96 %,
error 26.6 / 29.1, 0.45: 99 / 94 %, 26.7 / 25.3 (0.45 is the hand's own proportion, clear of the cliff below 0.3). The
sample clip's squatting right fist was found all along, and dropped as a speck: side on it spans 16-22 px, under a
quarter of the shoulder width (:data:`MIN_HAND_SPAN` 0.25 -> 0.15, at least :data:`MIN_HAND_PIXELS`): found 68 ->
94 %, its error over all frames 30.5 -> 25.3 degrees (a relaxed hand: 33.4).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from core.errors import InputError

__all__ = ["LANDMARKS", "LM", "HAND_LANDMARKS", "HAND_LM", "PoseFrame", "Estimator", "MediaPipeEstimator",
           "RtmlibEstimator", "EstimatorUnavailable", "make_estimator", "ESTIMATORS", "hand_crop", "elbow_crop",
           "hand_roi", "wrist_travel", "HAND_STRIDE"]

LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
LM = {name: i for i, name in enumerate(LANDMARKS)}

# MediaPipe's 21 hand landmarks: the wrist, then each finger from its base to its tip.
HAND_LANDMARKS: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}_{part}" for finger, parts in (("thumb", ("cmc", "mcp", "ip", "tip")),
                                             ("index", ("mcp", "pip", "dip", "tip")),
                                             ("middle", ("mcp", "pip", "dip", "tip")),
                                             ("ring", ("mcp", "pip", "dip", "tip")),
                                             ("pinky", ("mcp", "pip", "dip", "tip"))) for part in parts)
HAND_LM = {name: i for i, name in enumerate(HAND_LANDMARKS)}


class EstimatorUnavailable(InputError):
    """The chosen pose backend cannot run here (the message says what it needs)."""


@dataclass
class PoseFrame:
    """One person's landmarks in one frame (see the module docstring for the axes).

    image: ``(33, 2)`` pixels. world: ``(33, 3)`` metres, hip-centred, camera-aligned. visibility: ``(33,)``.
    hands: ``(2, 21, 3)`` two hands' landmarks (pixels, NaN where not found) or None (not asked for, or a frame
        the hand model skipped).
    hands_world: ``(2, 21, 3)`` the same hands as the model's metric 3D landmarks (metres, camera axes, origin in the
        hand), or None.
    """

    image: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    hands: np.ndarray | None = None
    hands_world: np.ndarray | None = None

    def box(self, min_visibility: float = 0.3) -> np.ndarray:
        """``(4,)`` pixel bounding box ``x0, y0, x1, y1`` of the landmarks seen well enough (all if none are)."""
        ok = self.visibility >= min_visibility
        pts = self.image[ok] if ok.sum() >= 4 else self.image
        return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


@runtime_checkable
class Estimator(Protocol):
    """A 3D pose estimator for one person per frame.

    ``track`` is the video mode: it may use earlier frames (ROI tracking) and must see frames in time order.
    ``detect`` looks at one image alone (no state): the tracker uses it to count the people in a frame.
    """

    name: str

    def track(self, rgb: np.ndarray) -> PoseFrame | None: ...

    def detect(self, rgb: np.ndarray) -> PoseFrame | None: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


def _mediapipe_frame(result, width: int, height: int) -> PoseFrame | None:
    if result.pose_landmarks is None or result.pose_world_landmarks is None:
        return None
    img = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
    world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float64)
    image = img[:, :2] * (width, height)
    return PoseFrame(image=image, world=world, visibility=np.clip(img[:, 2], 0.0, 1.0))


HAND_CROP_FOREARMS = 2.0  # crop side, in forearm lengths: the palm detector needs the hand with context
# Hands solution thresholds: on the rendered gesture clip 0.3 found 68 % / 94 % of frames (left / right), 0.5 found
# 63 % / 82 %; a hand found away from its wrist is dropped later (pose.hands.assign_sides).
HAND_CONFIDENCE = 0.3
HAND_MODEL = 1  # full; the lite model (0, also in the wheel) was barely faster (x3.04 vs x3.29 of body-only time,
# load 7) and found fewer hands (51 % / 87 % vs 77 % / 94 %) on the rendered gesture clip
# A hand spans about half the shoulder width seen from the front, a fist side on a fifth (16-22 px of 95 on the sample
# clip's squat: 0.25 dropped them all, right hand found 68 % -> 94 % at 0.15; mmpose_body3d_demo 58/57 -> 71/61 %);
# and never fewer than MIN_HAND_PIXELS (a person turned side on has narrow shoulders): smaller is a speck.
MIN_HAND_SPAN = 0.15  # of the shoulder width
MIN_HAND_PIXELS = 12.0
HAND_MEMORY_FRAMES = 90  # frames; a hand lost from its wrist's crop is looked for where it was, this many frames on
MIN_HAND_CROP = 64  # pixels; smaller hands are too small to see fingers anyway
# The hand model looks at every second frame; pose.hands.fill_skipped fills the frames between. Fingers change
# little in 1/30 s, and a track kept from two frames back stays on its hand (see the module docstring).
HAND_STRIDE = 2


def elbow_crop(image: np.ndarray, side: str, width: int, height: int) -> tuple[int, int, int] | None:
    """Square crop ``(x0, y0, size)`` pixels holding everywhere a hand can be from its elbow (the upper arm's
    length in every direction), for when the body model misplaced the wrist; None without an elbow."""
    shoulder, elbow = image[LM[f"{side}_shoulder"]], image[LM[f"{side}_elbow"]]
    if not (np.isfinite(shoulder).all() and np.isfinite(elbow).all()):
        return None
    size = int(min(max(2.4 * np.linalg.norm(elbow - shoulder), MIN_HAND_CROP), width, height))
    x0 = int(np.clip(round(elbow[0] - size / 2), 0, width - size))
    y0 = int(np.clip(round(elbow[1] - size / 2), 0, height - size))
    return x0, y0, size


def hand_crop(image: np.ndarray, side: str, width: int, height: int) -> tuple[int, int, int] | None:
    """Square crop ``(x0, y0, size)`` pixels around one hand from ``(33, 2)`` body landmarks, centred 0.4 forearm
    past the wrist along the forearm, kept inside the frame; None when it would leave the frame."""
    wrist, elbow = image[LM[f"{side}_wrist"]], image[LM[f"{side}_elbow"]]
    if not (np.isfinite(wrist).all() and np.isfinite(elbow).all()):
        return None
    size = int(max(HAND_CROP_FOREARMS * np.linalg.norm(wrist - elbow), MIN_HAND_CROP))
    size = min(size, width, height)
    centre = wrist + 0.4 * (wrist - elbow)
    x0 = int(np.clip(round(centre[0] - size / 2), 0, width - size))
    y0 = int(np.clip(round(centre[1] - size / 2), 0, height - size))
    if not (-size / 2 <= centre[0] <= width + size / 2 and -size / 2 <= centre[1] <= height + size / 2):
        return None
    return x0, y0, size


_PALM_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)  # what MediaPipe's hands solution boxes a hand by
OPEN_PIP_REACH = 0.45  # an open finger's first segment, in wrist-to-knuckle lengths (core.skeleton's hand: 0.46)
# Two hand landmark models, one per track, fed an image and a rotated box each (MediaPipe's own subgraph; it reads
# hand_landmark_full.tflite from the wheel).
_HAND_GRAPH = """
input_stream: "image"
input_stream: "roi0"
input_stream: "roi1"
output_stream: "landmarks0"
output_stream: "world0"
output_stream: "landmarks1"
output_stream: "world1"
node { calculator: "HandLandmarkCpu" input_stream: "IMAGE:image" input_stream: "ROI:roi0"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  output_stream: "LANDMARKS:landmarks0" output_stream: "WORLD_LANDMARKS:world0" }
node { calculator: "HandLandmarkCpu" input_stream: "IMAGE:image" input_stream: "ROI:roi1"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  output_stream: "LANDMARKS:landmarks1" output_stream: "WORLD_LANDMARKS:world1" }
"""


def _hand_graph_config():
    """:data:`_HAND_GRAPH` with its subgraphs expanded and each landmark model's hand-presence threshold set to
    :data:`HAND_CONFIDENCE`, as the hands solution that finds a lost hand has it.

    Why: the subgraph's own threshold is 0.5. A hand that the palm detector then found at 0.3 was lost again by its
    track on the next frame it was looked at, and found afresh (up to three crops, a palm detection each): on the
    bench-app clip 224 detections in 166 frames looked at, 8.3 of the 11.2 s the hands took. With this and
    :func:`wrist_travel`: 115 detections, 7.9 s, hands found 65 / 82 -> 76 / 83 %. On the hands bench's gesture clip
    the hands were found as often (90.5 / 91.4 -> 90 / 92.4 %) and the error where found rose 8.8 / 10.2 -> 9.4 /
    10.8 degrees (target 15); on the sample clip 100 / 93 -> 100 / 100 % found."""
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.calculators.util import thresholding_calculator_pb2
    from mediapipe.python._framework_bindings import validated_graph_config

    graph = validated_graph_config.ValidatedGraphConfig()
    graph.initialize(graph_config=text_format.Parse(_HAND_GRAPH, calculator_pb2.CalculatorGraphConfig()))
    config = calculator_pb2.CalculatorGraphConfig.FromString(graph.binary_config)
    options = thresholding_calculator_pb2.ThresholdingCalculatorOptions.ext
    thresholds = [node for node in config.node if node.calculator == "ThresholdingCalculator"]
    if len(thresholds) != 2:  # one per landmark model; another MediaPipe may have moved it
        raise RuntimeError(f"MediaPipe's hand landmark subgraph changed: {len(thresholds)} thresholds, 2 expected")
    for node in thresholds:
        node.options.Extensions[options].threshold = HAND_CONFIDENCE
    return config


def _span(hand: np.ndarray) -> float:
    return float(np.ptp(hand[:, :2], axis=0).max())


def _speck(hand: np.ndarray, shoulders: float) -> bool:
    """Whether ``(21, 2+)`` landmarks (pixels) are too small to be a hand of a person ``shoulders`` pixels wide."""
    return _span(hand) < max(MIN_HAND_SPAN * shoulders, MIN_HAND_PIXELS)


def _same_hand(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two ``(21, 2+)`` landmark sets lie on one hand (landmarks half a hand apart on average or less)."""
    return bool(np.linalg.norm(a[:, :2] - b[:, :2], axis=-1).mean() < 0.5 * _span(a))


def wrist_travel(hand: np.ndarray, wrists_then: np.ndarray, wrists_now: np.ndarray) -> np.ndarray:
    """``(2,)`` pixels to move a hand's box by: how far the body's wrist nearest the hand's ``(21, 2+)`` landmarks
    moved, from ``wrists_then`` to ``wrists_now`` (each ``(2, 2)``: left, right, pixels); zero where that wrist was
    more than a hand's span from the hand, moved more than a span, or is missing.

    Why: the hand model looks every second frame (:data:`HAND_STRIDE`), and a swinging hand leaves its last box in
    that time; without, the palm detector had to find it again in most frames it was looked at (treadmill clip: 62
    detections in 45 frames, hands found 77 / 54 %; with: 45, 91 / 51 %). The span bounds keep a wrist the body model
    misplaced from dragging the box off the hand: unbounded, the rendered gesture clip's left hand was found in 70 %
    of frames instead of 90 %, with the body's wrist on the chest.
    """
    hand = np.asarray(hand, dtype=np.float64)[:, :2]
    span = _span(hand)
    gaps = np.linalg.norm(wrists_then - hand[0], axis=1)
    near = int(np.nanargmin(np.where(np.isfinite(gaps), gaps, np.inf)))
    travel = wrists_now[near] - wrists_then[near]
    if not (np.isfinite(travel).all() and gaps[near] <= span and np.linalg.norm(travel) <= span):
        return np.zeros(2)
    return travel


def hand_roi(hand: np.ndarray) -> tuple[float, float, float, float]:
    """The box the hand landmark model looks in next, from one hand's ``(21, 2+)`` landmarks (pixels): ``(x, y,
    size, rotation)``, centre and side in pixels, rotation in radians (clockwise in the image, 0 when the fingers
    point up). MediaPipe's hands solution tracks with this box: the palm's landmarks bounded in the hand's own
    axes, doubled, squared on the longer side and shifted a tenth towards the fingers, with each finger's middle
    joint taken no nearer the wrist than where it is in an open hand (:data:`OPEN_PIP_REACH`).

    Why the open hand: MediaPipe boxes a fist by its folded middle joints, and a box that small cuts off a finger
    stretched out from the fist; on the rendered gesture clip the right hand's index, pointing out of a fist,
    stayed outside the box and was read curled for the whole second it pointed."""
    p = np.asarray(hand, dtype=np.float64)[list(_PALM_LANDMARKS), :2]
    wrist = p[0]
    for k in (4, 6, 8, 10):  # index..pinky: knuckle p[k], middle joint p[k + 1]
        reach = p[k] + OPEN_PIP_REACH * (p[k] - wrist)
        if np.linalg.norm(reach - wrist) > np.linalg.norm(p[k + 1] - wrist):
            p[k + 1] = reach
    middle = 0.5 * (0.5 * (p[4] + p[8]) + p[6])  # index, ring and middle finger bases (their knuckles)
    rotation = float(np.pi / 2 - np.arctan2(-(middle[1] - wrist[1]), middle[0] - wrist[0]))
    c, s = np.cos(rotation), np.sin(rotation)
    R = np.array([[c, -s], [s, c]])  # the hand's axes in the image
    mid = 0.5 * (p.min(0) + p.max(0))
    q = (p - mid) @ R
    lo, hi = q.min(0), q.max(0)
    centre = mid + R @ (0.5 * (lo + hi) + (0.0, -0.1 * (hi[1] - lo[1])))
    return float(centre[0]), float(centre[1]), float(2.0 * (hi - lo).max()), rotation


class MediaPipeEstimator:
    """BlazePose GHUM "full" through MediaPipe's legacy ``solutions.pose`` (embedded in the wheel, CPU).

    Args:
        min_detection_confidence, min_tracking_confidence: MediaPipe's thresholds.
        smooth: MediaPipe's own causal landmark filter. Off by default: :mod:`pose.clean` filters the whole clip
            without lag afterwards, and the raw output keeps the "jitter before cleaning" number honest.
        hands: also find both hands' 21 landmarks in ``track`` (crops around the wrists; see the module doc).
            ``detect`` (used to count people) stays body-only.
    """

    name = "mediapipe"

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 smooth: bool = False, hands: bool = False) -> None:
        if importlib.util.find_spec("mediapipe") is None:
            raise EstimatorUnavailable("the MediaPipe pose backend needs the `mediapipe` package: "
                                       "pip install mediapipe==0.10.21")
        self._args = dict(model_complexity=1, smooth_landmarks=smooth, enable_segmentation=False,
                          min_detection_confidence=min_detection_confidence,
                          min_tracking_confidence=min_tracking_confidence)
        self.hands = hands
        self._video = None
        self._static = None
        self._hand_trackers: list | None = None
        self._hand_graph = None
        self._graph_time = 0
        self._tracks: list[np.ndarray | None] = [None, None]  # each track's last landmarks, pixels
        self._last_hand: list[tuple[np.ndarray, float, int] | None] = [None, None]  # centre, span, frame
        self._frame_count = -1
        self._body_wrists: np.ndarray | None = None  # (2, 2) body's left, right wrist when hands were last looked at

    def _make(self, static: bool):
        import mediapipe as mp

        return mp.solutions.pose.Pose(static_image_mode=static, **self._args)

    def track(self, rgb: np.ndarray) -> PoseFrame | None:
        if self._video is None:
            self._video = self._make(False)
        frame = _mediapipe_frame(self._video.process(rgb), rgb.shape[1], rgb.shape[0])
        if frame is not None and self.hands:
            self._frame_count += 1
            if self._frame_count % HAND_STRIDE == 0:
                frame.hands, frame.hands_world = self._hands(rgb, frame)
        return frame

    def _hands(self, rgb: np.ndarray, frame: PoseFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(2, 21, 3)`` hand landmarks (see the module docstring), in pixels and as the model's metric 3D
        landmarks. The two rows are two hand tracks, not yet sides (:func:`pose.hands.side_sources` tells them
        apart by the body's wrists, which are too often wrong for a track to keep its side: on the rendered
        gesture clip the body put the left wrist on the chest for seconds).

        A track follows its hand with the landmark model alone, in a box from the previous frame's landmarks
        (:func:`hand_roi`). A lost track looks again with the palm detector, on crops around the body wrist the
        other track is not at (:meth:`_detect`). Two tracks on one hand: the one further from its side's wrist
        lets go.
        """
        H, W = rgb.shape[:2]
        shoulders = float(np.linalg.norm(frame.image[LM["left_shoulder"]] - frame.image[LM["right_shoulder"]]))
        out = np.full((2, 21, 3), np.nan)
        world = np.full((2, 21, 3), np.nan)
        wrists = frame.image[[LM["left_wrist"], LM["right_wrist"]], :2]
        found = self._track(rgb, wrists)
        if found[0] is not None and found[1] is not None and _same_hand(found[0][0], found[1][0]):
            d = [np.linalg.norm(found[k][0][0, :2] - frame.image[LM[f"{side}_wrist"]])
                 for k, side in enumerate(("left", "right"))]
            found[int(np.argmax(d))] = None
        for k in range(2):
            if found[k] is not None and not _speck(found[k][0], shoulders):
                out[k], world[k] = found[k]
        for k, side in enumerate(("left", "right")):
            if np.isfinite(out[k]).all():
                continue
            if np.isfinite(out[1 - k]).all():  # look at the wrist the other track is not on
                d = [np.linalg.norm(out[1 - k][0, :2] - frame.image[LM[f"{s}_wrist"]]) for s in ("left", "right")]
                side = ("left", "right")[int(np.argmax(d))]
            hand = self._detect(k, side, rgb, frame, shoulders)
            if hand is not None and not (np.isfinite(out[1 - k]).all() and _same_hand(hand[0], out[1 - k])):
                out[k], world[k] = hand
        for k in range(2):
            ok = np.isfinite(out[k]).all()
            self._tracks[k] = out[k] if ok else None
            if ok:
                self._last_hand[k] = (out[k][:, :2].mean(axis=0), _span(out[k]), self._frame_count)
        self._body_wrists = wrists
        return out, world

    def _track(self, rgb: np.ndarray, wrists: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Each track's hand in this frame by the landmark model in the box its last landmarks give, moved as the
        body's wrist moved since (``wrists``: ``(2, 2)`` left, right, pixels, this frame; both tracks in one run of
        :data:`_HAND_GRAPH`); None where a track has no hand or the model saw none."""
        import mediapipe as mp
        from mediapipe.framework.formats import rect_pb2

        if all(t is None for t in self._tracks):
            return [None, None]
        H, W = rgb.shape[:2]
        if self._hand_graph is None:
            from mediapipe.python._framework_bindings import resource_util

            resource_util.set_resource_dir(str(Path(mp.__file__).parent.parent))
            self._hand_graph = mp.CalculatorGraph(graph_config=_hand_graph_config())
            self._graph_out: dict = {}
            for name in ("landmarks0", "world0", "landmarks1", "world1"):
                self._hand_graph.observe_output_stream(name, lambda stream, packet: self._graph_out.__setitem__(
                    stream, mp.packet_getter.get_proto(packet)))
            model = mp.packet_creator.create_int(HAND_MODEL)
            self._hand_graph.start_run(input_side_packets={"model_complexity": model})
        self._graph_out.clear()
        self._graph_time += 1
        self._hand_graph.add_packet_to_input_stream("image", mp.packet_creator.create_image_frame(
            image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)).at(self._graph_time))
        for k, track in enumerate(self._tracks):
            if track is not None:
                x, y, size, rotation = hand_roi(track)
                if self._body_wrists is not None:
                    x, y = (x, y) + wrist_travel(track, self._body_wrists, wrists)
                roi = rect_pb2.NormalizedRect(x_center=x / W, y_center=y / H, width=size / W, height=size / H,
                                              rotation=rotation)
                self._hand_graph.add_packet_to_input_stream(f"roi{k}", mp.packet_creator.create_proto(roi).at(
                    self._graph_time))
        self._hand_graph.wait_until_idle()
        found: list[tuple[np.ndarray, np.ndarray] | None] = [None, None]
        for k in range(2):
            if f"landmarks{k}" in self._graph_out and f"world{k}" in self._graph_out:
                pts = np.array([(p.x * W, p.y * H, p.z * W) for p in self._graph_out[f"landmarks{k}"].landmark])
                found[k] = pts, np.array([(p.x, p.y, p.z) for p in self._graph_out[f"world{k}"].landmark])
        return found

    def _detect(self, k: int, side: str, rgb: np.ndarray, frame: PoseFrame,
                shoulders: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Track ``k``'s hand found afresh by the hands solution (palm detector, then landmarks) on crops around
        the body's ``side`` wrist, where the hand was last seen, and the elbow, in that order; None if none.

        The crop where the hand was last seen is there because the body model puts a raised, open hand's wrist on
        the chest often enough (on the rendered gesture clip the left hand fell from 63 % to 26 % found when its
        wrist went astray), and hands move little in 1 s.
        """
        import mediapipe as mp

        if self._hand_trackers is None:
            self._hand_trackers = [
                mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=1, model_complexity=HAND_MODEL,
                                         min_detection_confidence=HAND_CONFIDENCE, min_tracking_confidence=HAND_CONFIDENCE)
                for _ in range(2)]
        H, W = rgb.shape[:2]
        boxes = [hand_crop(frame.image, side, W, H), elbow_crop(frame.image, side, W, H)]
        last = self._last_hand[k]
        if last is not None and self._frame_count - last[2] <= HAND_MEMORY_FRAMES:
            size = int(min(max(last[1] * 2.5, MIN_HAND_CROP), W, H))
            boxes.insert(1, (int(np.clip(round(last[0][0] - size / 2), 0, W - size)),
                             int(np.clip(round(last[0][1] - size / 2), 0, H - size)), size))
        for box in boxes:
            if box is None:
                continue
            x0, y0, size = box
            crop = np.ascontiguousarray(rgb[y0:y0 + size, x0:x0 + size])
            result = self._hand_trackers[k].process(crop)
            if not (result.multi_hand_landmarks and result.multi_hand_world_landmarks):
                continue
            pts = np.array([(p.x, p.y, p.z) for p in result.multi_hand_landmarks[0].landmark])
            pts = pts * (crop.shape[1], crop.shape[0], crop.shape[1]) + (x0, y0, 0.0)
            if _speck(pts, shoulders):  # seen on a mannequin's chest
                continue
            return pts, np.array([(p.x, p.y, p.z) for p in result.multi_hand_world_landmarks[0].landmark])
        return None

    def detect(self, rgb: np.ndarray) -> PoseFrame | None:
        if self._static is None:
            self._static = self._make(True)
        return _mediapipe_frame(self._static.process(rgb), rgb.shape[1], rgb.shape[0])

    def reset(self) -> None:
        if self._video is not None:
            self._video.reset()
        for tracker in self._hand_trackers or ():
            tracker.reset()
        self._last_hand = [None, None]
        self._tracks = [None, None]
        self._body_wrists = None

    def close(self) -> None:
        for pose in (self._video, self._static, *(self._hand_trackers or ())):
            if pose is not None:
                pose.close()
        self._video = self._static = self._hand_trackers = None
        if self._hand_graph is not None:
            self._hand_graph.close()
            self._hand_graph = None
        self._tracks = [None, None]


class RtmlibEstimator:
    """Optional stronger backend: RTMPose-family ONNX models run by rtmlib + onnxruntime (not bundled).

    It needs ``pip install rtmlib onnxruntime`` and a folder with the user's own ONNX files: a person detector
    (``det.onnx``, e.g. YOLOX/RTMDet) and a 3D whole-body model (``pose3d.onnx``, e.g. RTMW3D) whose keypoints map
    onto the 33 landmarks. Nothing is downloaded. This build defines the interface and checks the requirements;
    the landmark mapping for a specific 3D model is not wired yet, and says so instead of pretending.
    """

    name = "rtmlib"
    FILES = ("det.onnx", "pose3d.onnx")

    def __init__(self, model_dir: str | Path | None = None) -> None:
        missing_pkgs = [m for m in ("rtmlib", "onnxruntime") if importlib.util.find_spec(m) is None]
        need = ("the rtmlib pose backend is optional and needs: `pip install rtmlib onnxruntime` and a folder "
                f"with your own ONNX models ({', '.join(self.FILES)}) passed as model_dir")
        if missing_pkgs:
            raise EstimatorUnavailable(f"{need}; missing packages: {', '.join(missing_pkgs)}")
        if model_dir is None:
            raise EstimatorUnavailable(f"{need}; no model folder was given")
        folder = Path(model_dir)
        missing = [f for f in self.FILES if not (folder / f).is_file()]
        if missing:
            raise EstimatorUnavailable(f"{need}; missing in {folder}: {', '.join(missing)}")
        raise EstimatorUnavailable("the rtmlib backend's keypoint mapping onto the 33 landmarks is not implemented "
                                   "in this build; use the default MediaPipe backend")

    def track(self, rgb: np.ndarray) -> PoseFrame | None:  # pragma: no cover - never constructed (see __init__)
        raise NotImplementedError

    detect = track

    def reset(self) -> None:  # pragma: no cover
        pass

    def close(self) -> None:  # pragma: no cover
        pass


ESTIMATORS = {"mediapipe": MediaPipeEstimator, "rtmlib": RtmlibEstimator}


def make_estimator(name: str = "mediapipe", **options) -> Estimator:
    """An estimator by name (``"mediapipe"``, the default, or ``"rtmlib"``).

    Raises:
        EstimatorUnavailable: unknown name, or the backend's packages/models are absent (the message says which).
    """
    if name not in ESTIMATORS:
        raise EstimatorUnavailable(f"unknown pose backend {name!r}; choose one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](**options)
