"""Following one person: choosing the largest/most central, staying on them, rejecting jumps (fake estimator)."""
from __future__ import annotations

import numpy as np

import pytest

from pose.estimators import PoseFrame
from pose.tracking import PersonChoiceError, PersonTracker, choose_person

W, H = 320, 240


def person(box) -> PoseFrame:
    x0, y0, x1, y1 = box
    g = np.linspace(0, 1, 33)
    image = np.stack([x0 + (x1 - x0) * g, y0 + (y1 - y0) * g[::-1]], axis=1)
    return PoseFrame(image=image, world=np.zeros((33, 3)), visibility=np.ones(33))


class FakeEstimator:
    """Sees a person wherever their box's centre pixel is not black. ``track`` prefers people in list order
    (like MediaPipe picking whoever its detector scores best), ``detect`` too."""

    name = "fake"

    def __init__(self, boxes_per_frame):
        self.boxes = boxes_per_frame
        self.t = 0
        self.resets = 0

    def _visible(self, rgb):
        out = []
        for box in self.boxes[self.t]:
            cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
            if rgb[cy, cx].any():
                out.append(person(box))
        return out

    def track(self, rgb):
        seen = self._visible(rgb)
        return seen[0] if seen else None

    def detect(self, rgb):
        if rgb.shape[:2] != (H, W):  # a window of the frame: this fake knows people by frame position only
            return None
        return self.track(rgb)

    def reset(self):
        self.resets += 1

    def close(self):
        pass


def run(boxes_per_frame, person=None):
    est = FakeEstimator(boxes_per_frame)
    tracker = PersonTracker(est, fps=30.0, survey_every=0.2, person=person)
    out = []
    for t in range(len(boxes_per_frame)):
        est.t = t
        out.append(tracker.step(np.full((H, W, 3), 128, np.uint8), t))
    return out, tracker.report


def centre(p: PoseFrame) -> np.ndarray:
    b = p.box()
    return 0.5 * (b[:2] + b[2:])


def test_chooses_largest_most_central():
    small_edge = person((5, 100, 35, 160))
    big_centre = person((130, 40, 190, 220))
    assert choose_person([small_edge, big_centre], W, H) == 1


def test_stays_on_the_chosen_person_although_the_estimator_prefers_another():
    side = (10, 120, 40, 180)  # small person at the edge, listed first: the estimator's favourite
    main = [(140 + 2 * t, 40, 190 + 2 * t, 220) for t in range(20)]  # big central person walking right
    poses, report = run([[side, main[t]] for t in range(20)])
    assert all(p is not None for p in poses)
    assert all(abs(centre(p)[0] - (165 + 2 * t)) < 1.0 for t, p in enumerate(poses))
    assert report.several_people and report.people_seen == 2 and report.masked


def test_a_jump_to_someone_else_is_rejected():
    a = (140, 40, 190, 220)
    b = (250, 40, 300, 220)
    frames = [[a]] * 5 + [[b]] * 2 + [[a]] * 3  # our person vanishes, someone else appears far away
    poses, report = run(frames)
    assert all(p is not None for p in poses[:5])
    assert poses[5] is None and report.rejected >= 1
    assert all(p is not None and abs(centre(p)[0] - 165) < 1 for p in poses[7:])


def test_people_are_numbered_left_to_right_and_the_one_asked_for_is_followed():
    right_big = [(200 + t, 40, 260 + t, 220) for t in range(15)]  # the automatic choice, listed first
    left_small = [(30 + t, 110, 60 + t, 190) for t in range(15)]
    frames = [[right_big[t], left_small[t]] for t in range(15)]
    poses, report = run(frames)
    assert report.chosen == 2 and not report.chosen_by_user
    np.testing.assert_allclose(report.people[:, 0], [30, 200])  # person 1 is the leftmost
    assert all(abs(centre(p)[0] - (230 + t)) < 1 for t, p in enumerate(poses))
    poses, report = run(frames, person=1)
    assert report.chosen == 1 and report.chosen_by_user and report.masked
    assert all(p is not None and abs(centre(p)[0] - (45 + t)) < 1 for t, p in enumerate(poses))


def test_one_person_found_in_two_parts_is_one_person():
    """The detector first returns someone's upper body; with it blacked out, the rest of them: one person."""
    upper = (135, 40, 185, 110)
    whole = (130, 40, 190, 220)
    poses, report = run([[upper, whole]] * 5)
    assert report.people_seen == 1 and len(report.people) == 1 and not report.several_people
    np.testing.assert_allclose(report.people[0], whole)


def test_a_person_beyond_those_found_is_refused_with_the_count():
    with pytest.raises(PersonChoiceError, match="person 3 was asked for, but 2 people were found"):
        run([[(200, 40, 260, 220), (30, 110, 60, 190)]] * 3, person=3)
    with pytest.raises(PersonChoiceError, match="numbered from 1"):
        run([[(200, 40, 260, 220)]], person=0)


def test_single_person_is_not_reported_as_several():
    poses, report = run([[(140, 40, 190, 220)]] * 12)
    assert all(p is not None for p in poses)
    assert not report.several_people and not report.masked and report.surveys >= 2


# -------------------------------------------------------------------- several real people (MediaPipe, real clips)

def _tiled_clip(src, out, rows: int, cols: int, frames: int):
    """``src``'s first frames tiled ``rows`` x ``cols`` (every other column mirrored): that many people at once."""
    import cv2

    from core.render.video import write_mp4
    from tests.synthetic import first_frames

    read, fps = first_frames(src, frames)
    tiled = []
    for f in read:
        row = np.concatenate([f if c % 2 == 0 else f[:, ::-1] for c in range(cols)], axis=1)
        big = np.concatenate([row] * rows, axis=0)
        scale = 1280 / max(big.shape[:2])
        tiled.append(cv2.resize(big, (int(big.shape[1] * scale) // 2 * 2, int(big.shape[0] * scale) // 2 * 2)))
    write_mp4(tiled, out, fps=fps)
    return out


def test_a_tiled_sample_clip_is_refused_naming_the_people_in_view(tmp_path):
    """3x2 copies of the sample clip: six small people. The whole-frame detector finds none of them; the
    window search does, and the refusal says so instead of only 'nobody found'."""
    import pytest

    from jobs import SAMPLE_VIDEO
    from pose.clean import NobodyError
    from pose.pipeline import video_to_motion

    clip = _tiled_clip(SAMPLE_VIDEO, tmp_path / "six.mp4", rows=2, cols=3, frames=40)
    with pytest.raises(NobodyError, match=r"; 6 people were in view, too small to follow one of them"):
        video_to_motion(clip)


def test_a_tiled_real_clip_warns_of_several_people(tmp_path, shared_data):
    from pose.pipeline import video_to_motion

    src = shared_data / "videos" / "dme_treadmill_27_Tennage_Hooligan.mp4"
    result = video_to_motion(_tiled_clip(src, tmp_path / "six.mp4", rows=2, cols=3, frames=45))
    assert result.tracking.people_seen >= 5
    assert any("several people were seen (" in w and "nobody was picked" in w for w in result.warnings)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    from jobs import SAMPLE_VIDEO
    from tests.synthetic import two_people_video

    return two_people_video(SAMPLE_VIDEO, tmp_path_factory.mktemp("two") / "two.mp4", frames=30)


def test_the_people_listed_before_a_job_are_the_ones_it_numbers(two_people):
    """Two rendered people (small, mirrored on the left; full size on the right): listed left to right, the
    right one suggested; a job told to follow person 1 stays on the left one for the whole clip, and one left to
    choose follows person 2 and says that nobody was picked."""
    from pose.pipeline import find_people, video_to_motion

    people = find_people(two_people)
    assert people.count == 2 and people.frame_index == 0 and people.suggested == 2
    assert people.boxes[0, 2] < 640 < people.boxes[1, 0]
    chosen = video_to_motion(two_people, person=1)
    x = np.nanmean(chosen.image_landmarks[..., 0], axis=1)
    assert chosen.detected.all() and (x < 640).all()
    assert chosen.tracking.chosen == 1 and chosen.tracking.chosen_by_user
    np.testing.assert_allclose(chosen.tracking.people, people.boxes)
    assert any("person 1 (numbered left to right), as asked, was followed" in w for w in chosen.warnings)
    auto = video_to_motion(two_people)
    x = np.nanmean(auto.image_landmarks[..., 0], axis=1)
    assert auto.detected.all() and (x > 640).all() and auto.tracking.chosen == 2
    assert any("nobody was picked, so person 2 of 2" in w and "--person N" in w for w in auto.warnings)
    with pytest.raises(PersonChoiceError, match="person 3 was asked for, but 2 people were found"):
        video_to_motion(two_people, person=3)


def test_a_long_clip_with_two_people_is_followed_in_one_pass(tmp_path):
    """Issue 14: clips of SPLIT_SECONDS or more are estimated in two halves at once; the second half's tracker
    knows nothing of the first's choice, so with two people in view the first half's tracker goes on instead, and
    the same person is followed to the end."""
    from jobs import SAMPLE_VIDEO
    from pose.pipeline import SPLIT_SECONDS, video_to_motion
    from tests.synthetic import two_people_video

    clip = two_people_video(SAMPLE_VIDEO, tmp_path / "two.mp4", frames=int(30 * SPLIT_SECONDS) + 6)
    auto = video_to_motion(clip)
    x = np.nanmean(auto.image_landmarks[..., 0], axis=1)
    assert auto.detected.all() and (x > 640).all() and auto.tracking.chosen == 2
