"""Following one person through a video when several may be in frame.

MediaPipe's video mode tracks a single person: it re-uses the previous frame's landmarks as the next region of
interest, and only when it loses them runs its detector on the whole frame, which then picks whoever scores
best. So on its own it can jump to another person. :class:`PersonTracker` keeps it on one:

1. **Choosing** (first frame with anyone in it): the estimator's single-image ``detect`` is run repeatedly, each
   time with the people already found blacked out, to list everyone (up to ``max_people``). The detector reports
   one person per image, and with several in view it often finds nobody more (measured: on a 3x2 tiling of a
   one-person clip it found 1 of 6 people, and none at all on the tiled sample clip), so the frame is also
   searched in overlapping square windows about 1.5 body heights wide (:meth:`PersonTracker._people_in_windows`;
   0.3-1.4 s once per clip on this CPU, and once a second while nobody has been found). The people are numbered
   1, 2, ... from left to right (:meth:`PersonTracker.people_in`; :func:`pose.pipeline.find_people` shows the
   same list to the user before a job). The person followed is the one the user picked (``person``), else the
   largest and most central: score = box height / frame height x (1 - 0.6 x centre distance / half-diagonal).
2. **Keeping**: once more than one person has been seen, every frame is passed to the estimator with everything
   outside a window around the chosen person blacked out. Blacking out (instead of cropping) keeps pixel
   coordinates unchanged, so MediaPipe's own frame-to-frame tracking still works. The window is the person's
   last box widened by 40 %, and it grows by one body height per second while they are lost, so someone who
   walks off and comes back elsewhere is found again.
3. **Continuity check**: a pose whose box jumps further than a person can move since the last accepted frame
   (or changes size abruptly) is rejected as a different person; the frame counts as "nobody" and the gap is
   filled later by :mod:`pose.clean`.
4. **Survey**: about once a second the frame is checked with the chosen person blacked out; anyone still
   found is another person, which switches masking on and is reported.

Cost: masking is one frame copy (about 1 ms at 720p) and only once several people were seen; the survey is one
extra detector run per second of video.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from core.errors import InputError

from .estimators import LM, Estimator, PoseFrame

__all__ = ["PersonTracker", "TrackingReport", "choose_person", "PersonChoiceError"]


class PersonChoiceError(InputError):
    """The person asked for is not among those found (the message lists how many there are)."""

_TORSO = [LM["left_shoulder"], LM["right_shoulder"], LM["left_hip"], LM["right_hip"]]


@dataclass
class TrackingReport:
    """What the tracker saw.

    people_seen: most people found in one frame. frames_with_others: surveyed frames that had someone else.
    surveys: frames surveyed. rejected: poses dropped as a jump to someone else. masked: whether masking was on.
    first_frame: the first frame with anyone in it (-1: nobody was ever found). people: ``(N, 4)`` pixel boxes
    ``x0, y0, x1, y1`` of everyone found there, numbered 1..N from left to right. chosen: the number of the
    person followed (1-based; 0 before anyone was found). chosen_by_user: whether the user picked them.
    """

    people_seen: int = 0
    frames_with_others: int = 0
    surveys: int = 0
    rejected: int = 0
    masked: bool = False
    chosen_box: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    first_frame: int = -1
    people: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    chosen: int = 0
    chosen_by_user: bool = False

    @property
    def several_people(self) -> bool:
        return self.people_seen > 1


def _score(box: np.ndarray, width: int, height: int) -> float:
    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
    dist = np.hypot(cx - width / 2, cy - height / 2) / np.hypot(width / 2, height / 2)
    return float((box[3] - box[1]) / height * (1.0 - 0.6 * min(dist, 1.0)))


def choose_person(people: list[PoseFrame], width: int, height: int) -> int:
    """Index of the largest, most central person (see the module docstring for the score)."""
    return int(np.argmax([_score(p.box(), width, height) for p in people]))


def _blacked_out(rgb: np.ndarray, boxes: list[np.ndarray], grow: float) -> np.ndarray:
    out = rgb.copy()
    H, W = rgb.shape[:2]
    for b in boxes:
        x0, y0, x1, y1 = _grown(b, grow, W, H)
        out[y0:y1, x0:x1] = 0
    return out


def _grown(box: np.ndarray, grow: float, W: int, H: int) -> tuple[int, int, int, int]:
    w, h = box[2] - box[0], box[3] - box[1]
    pad = grow * max(w, h)
    return (int(max(0, box[0] - pad)), int(max(0, box[1] - pad)), int(min(W, box[2] + pad + 1)),
            int(min(H, box[3] + pad + 1)))


def _real_person(p: PoseFrame, height: int) -> bool:
    """A detection worth counting as a person: torso seen, not a sliver."""
    box = p.box()
    return bool(p.visibility[_TORSO].mean() > 0.5 and (box[3] - box[1]) > 0.08 * height)


def _window_starts(total: int, side: int) -> list[int]:
    """Offsets of windows of ``side`` pixels that cover ``total`` pixels with half-window steps."""
    last = max(total - side, 0)
    starts = list(range(0, last + 1, max(side // 2, 1)))
    return starts if starts[-1] == last else starts + [last]


def _same_place(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two boxes are one person seen twice: centres closer than half the smaller height, or the smaller
    box mostly (60 %) inside the larger (the detector found someone's upper body, then, with it blacked out,
    the rest of them: seen on a rendered runner)."""
    ca, cb = 0.5 * (a[:2] + a[2:]), 0.5 * (b[:2] + b[2:])
    if float(np.linalg.norm(ca - cb)) < 0.5 * min(a[3] - a[1], b[3] - b[1]):
        return True
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return bool(w > 0 and h > 0 and w * h > 0.6 * max(smaller, 1e-9))


class PersonTracker:
    """Runs an :class:`~pose.estimators.Estimator` on frames in order, following one person.

    Args:
        estimator: the pose backend. fps: the clip's frame rate (for speed limits and the survey interval).
        survey_every: seconds between checks for other people. max_people: most people listed when choosing.
        person: the person to follow, numbered 1.. from left to right in the first frame with anyone in it (as
            :meth:`people_in` lists them); None: the largest, most central one.
    """

    def __init__(self, estimator: Estimator, fps: float, survey_every: float = 1.0, max_people: int = 4,
                 person: int | None = None) -> None:
        if person is not None and person < 1:
            raise PersonChoiceError(f"people are numbered from 1; got person {person}")
        self.estimator = estimator
        self.person = person
        self.fps = fps if fps > 0 else 30.0
        self.survey_interval = max(1, int(round(survey_every * self.fps)))
        self.max_people = max_people
        self.report = TrackingReport()
        self._box: np.ndarray | None = None  # chosen person's last accepted box (pixels)
        self._last_seen = -1
        self._buffer: np.ndarray | None = None

    # -- choosing ---------------------------------------------------------------------------------------------
    def _everyone(self, rgb: np.ndarray) -> list[PoseFrame]:
        H = rgb.shape[0]
        people: list[PoseFrame] = []
        image = rgb
        for _ in range(self.max_people):
            p = self.estimator.detect(image)
            if p is None or not _real_person(p, H):
                break
            people.append(p)
            image = _blacked_out(rgb, [q.box() for q in people], grow=0.1)
        return people

    def _people_in_windows(self, rgb: np.ndarray, known: list[np.ndarray]) -> list[PoseFrame]:
        """People the whole-frame detector missed, found in overlapping square windows (frame coordinates).

        The window is 1.5 times the height of the people already found (0.6 of the frame's short side when none
        were), at least 0.3 of it; windows step by half their side. A window whose centre lies in a known
        person's box is skipped.
        """
        H, W = rgb.shape[:2]
        short = min(H, W)
        heights = [b[3] - b[1] for b in known]
        side = int(np.clip(1.5 * np.median(heights) if heights else 0.6 * short, 0.3 * short, short))
        boxes = list(known)
        found: list[PoseFrame] = []
        for y0 in _window_starts(H, side):
            for x0 in _window_starts(W, side):
                centre = (x0 + side / 2, y0 + side / 2)
                if any(b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3] for b in boxes):
                    continue
                p = self.estimator.detect(np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side]))
                if p is None or not _real_person(p, side):
                    continue
                p = replace(p, image=p.image + (x0, y0))
                box = p.box()
                if any(_same_place(box, b) for b in boxes) or (box[3] - box[1]) < 0.08 * H:
                    continue
                boxes.append(box)
                found.append(p)
        return found

    def people_in(self, rgb: np.ndarray, index: int) -> list[PoseFrame]:
        """Everyone found in frame ``index`` by the choosing step, left to right (person 1 is the leftmost).

        The window search runs when the whole-frame detector found someone, and on every survey frame otherwise
        (it costs 0.3-1.4 s). The same frames give the same list: the page and the CLI show this list before a
        job, and the job's tracker numbers the people with it.
        """
        people = self._everyone(rgb)
        if people or index % self.survey_interval == 0:
            people += self._people_in_windows(rgb, [p.box() for p in people])
        distinct: list[PoseFrame] = []
        for p in sorted(people, key=lambda p: -float(p.box()[3] - p.box()[1])):  # the fullest view of each person
            if not any(_same_place(p.box(), q.box()) for q in distinct):
                distinct.append(p)
        return sorted(distinct, key=lambda p: float(p.box()[0] + p.box()[2]))

    def _masked(self, rgb: np.ndarray, index: int) -> np.ndarray:
        H, W = rgb.shape[:2]
        assert self._box is not None
        lost_s = (index - self._last_seen) / self.fps
        h = self._box[3] - self._box[1]
        grow = 0.4 + (lost_s * h / max(h, 1.0) if lost_s > 0.1 else 0.0)
        x0, y0, x1, y1 = _grown(self._box, grow, W, H)
        if self._buffer is None or self._buffer.shape != rgb.shape:
            self._buffer = np.zeros_like(rgb)
        else:
            self._buffer.fill(0)
        self._buffer[y0:y1, x0:x1] = rgb[y0:y1, x0:x1]
        return self._buffer

    def _plausible(self, pose: PoseFrame, index: int) -> bool:
        """Whether ``pose`` can be the chosen person, given where they were last seen."""
        if self._box is None:
            return True
        dt = max(index - self._last_seen, 1) / self.fps
        box = pose.box()
        h_prev = max(self._box[3] - self._box[1], 1.0)
        c_prev = 0.5 * (self._box[:2] + self._box[2:])
        c = 0.5 * (box[:2] + box[2:])
        # People move at most a few body heights per second in the image; one frame may also re-frame a limb.
        jump = float(np.linalg.norm(c - c_prev)) / h_prev
        size = (box[3] - box[1]) / h_prev
        limit = 0.35 + 3.0 * dt
        return jump <= limit and (1.0 / (1.6 + 2 * dt)) <= size <= 1.6 + 2 * dt

    # -- per frame --------------------------------------------------------------------------------------------
    def step(self, rgb: np.ndarray, index: int) -> PoseFrame | None:
        """The chosen person's pose in frame ``index`` (frames must come in order), or None."""
        H, W = rgb.shape[:2]
        rep = self.report
        if self._box is None:
            people = self.people_in(rgb, index)
            if not people:
                return None
            if self.person is not None and self.person > len(people):
                raise PersonChoiceError(
                    f"person {self.person} was asked for, but {len(people)} "
                    f"{'person was' if len(people) == 1 else 'people were'} found in the first frame with anyone "
                    f"in it (frame {index}); people are numbered from 1, left to right")
            k = self.person - 1 if self.person is not None else choose_person(people, W, H)
            self._box, self._last_seen = people[k].box(), index
            rep.chosen_box = self._box.copy()
            rep.first_frame, rep.people = index, np.array([p.box() for p in people])
            rep.chosen, rep.chosen_by_user = k + 1, self.person is not None
            rep.people_seen = max(rep.people_seen, len(people))
            rep.surveys += 1
            if len(people) > 1:
                rep.frames_with_others += 1
                rep.masked = True
                how = "the one asked for" if self.person is not None else "the largest, most central one"
                rep.notes.append(f"frame {index}: {len(people)} people in view; following person {k + 1}, {how}")
        image = self._masked(rgb, index) if rep.masked else rgb
        pose = self.estimator.track(image)
        if pose is not None and not self._plausible(pose, index):
            rep.rejected += 1
            rep.masked = True  # someone else got picked up: from now on look only near our person
            self.estimator.reset()
            pose = None
        if pose is not None:
            self._box, self._last_seen = pose.box(), index
        if pose is not None and index % self.survey_interval == self.survey_interval - 1:
            self._survey(rgb, index)
        return pose

    def _survey(self, rgb: np.ndarray, index: int) -> None:
        assert self._box is not None
        rep = self.report
        rep.surveys += 1
        other = self.estimator.detect(_blacked_out(rgb, [self._box], grow=0.15))
        if other is not None and _real_person(other, rgb.shape[0]):
            rep.frames_with_others += 1
            rep.people_seen = max(rep.people_seen, 2)
            if not rep.masked:
                rep.notes.append(f"frame {index}: another person in view; keeping to the one followed so far")
            rep.masked = True
