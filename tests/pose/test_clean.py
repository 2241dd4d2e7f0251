"""Cleaning: gaps, refusing empty clips, zero-lag filtering, foot contacts."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from pose.clean import (NobodyError, body_up, check_detections, fill_gaps, foot_contacts, gaps, jitter, level_up,
                        smooth)


def test_fill_gaps_interpolates_and_holds_edges():
    x = np.arange(10, dtype=float)[:, None] * 2.0
    valid = np.ones(10, bool)
    valid[[0, 4, 5, 9]] = False
    out = fill_gaps(np.where(valid[:, None], x, np.nan), valid)
    assert np.allclose(out[1:9, 0], x[1:9, 0])
    assert out[0, 0] == x[1, 0] and out[9, 0] == x[8, 0]
    assert gaps(valid) == [(0, 1), (4, 6), (9, 10)]


def test_refuses_clips_where_most_frames_have_nobody():
    with pytest.raises(NobodyError, match="no person was found in any of the 20 frames"):
        check_detections(np.zeros(20, bool), 30.0)
    few = np.zeros(20, bool)
    few[:6] = True
    with pytest.raises(InputError, match="only 6 of 20 frames"):
        check_detections(few, 30.0)
    check_detections(np.r_[np.ones(12, bool), np.zeros(8, bool)], 30.0)  # 60 %: accepted


def test_filter_reduces_jitter_without_lag():
    fps = 30.0
    t = np.arange(120) / fps
    clean = 0.2 * np.sin(2 * np.pi * 1.5 * t)[:, None, None] * np.ones((1, 3, 3))
    noisy = clean + np.random.default_rng(0).normal(0, 0.01, clean.shape)
    out = smooth(noisy, fps, 0.5)
    assert jitter(out - clean, fps) < 0.2 * jitter(noisy - clean, fps)  # the noise's share of the jitter
    err = np.abs(out - clean)[10:-10]
    assert err.mean() < 0.006 and err.max() < 0.03  # closer to the truth than the noise (1 cm) is
    # No lag: the best alignment with the true signal is at shift 0 (a causal filter would be late).
    sig, ref = out[:, 0, 0], clean[:, 0, 0]
    shifts = range(-4, 5)
    best = min(shifts, key=lambda s: np.mean((np.roll(sig, -s) - ref)[10:-10] ** 2))
    assert best == 0
    assert np.allclose(smooth(noisy, fps, 0.0), noisy)  # strength 0 = off
    assert jitter(smooth(noisy, fps, 1.0), fps) < jitter(out, fps) < jitter(smooth(noisy, fps, 0.25), fps)


def test_foot_contacts_need_low_and_still():
    T = 60
    h = np.zeros((T, 2))
    v = np.zeros((T, 2))
    h[20:40, 0] = 0.2  # left foot lifted
    v[:, 1] = 1.0  # right foot sliding fast all along
    c = foot_contacts(h, v, 30.0)
    assert c[:18, 0].all() and not c[22:38, 0].any() and c[42:, 0].all()
    assert not c[:, 1].any()
    flicker = np.zeros((T, 2))
    flicker[30, 0] = 0.2  # one frame up: ignored
    assert foot_contacts(flicker, np.zeros((T, 2)), 30.0)[:, 0].all()


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def test_level_up_takes_the_walking_lean_out_of_the_body_axis():
    rng = np.random.default_rng(0)
    T, fps = 120, 30.0
    up = np.array([0.0, np.cos(np.radians(5)), np.sin(np.radians(5))])  # the camera pitched by 5 degrees
    ahead = np.array([0.3, 0.0, -1.0])  # walking away from the camera and a little to the right, along the floor
    ahead = ahead - (ahead @ up) * up
    ahead /= np.linalg.norm(ahead)
    lean = np.radians(8)  # people lean forward when they walk
    axis = np.cos(lean) * up + np.sin(lean) * ahead + rng.normal(scale=0.03, size=(T, 3))
    path = np.array([0.0, 0.0, -4.0]) + 1.2 * np.arange(T)[:, None] / fps * ahead
    path += 0.02 * np.sin(np.arange(T) / fps * 2 * np.pi * 2)[:, None] * up  # the hips bob
    path += rng.normal(scale=0.01, size=(T, 3))
    assert _angle(body_up(axis), up) > 6.0
    assert _angle(level_up(axis, path, fps), up) < 2.0
    # Standing still (or a crouch: the hips go down, not along): the body's axis alone.
    still = np.array([0.0, 0.0, -4.0]) + rng.normal(scale=0.01, size=(T, 3))
    assert _angle(level_up(axis, still, fps), body_up(axis)) < 0.5
    crouch = still - 0.6 * np.linspace(0, 1, T)[:, None] * up
    assert _angle(level_up(axis, crouch, fps), body_up(axis)) < 0.5
