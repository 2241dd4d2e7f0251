"""Stage II's loss terms on hand-computed values."""
import math

import torch

from core.optimize import terms


def test_penetration_counts_only_vertices_inside_the_margin_per_frame_and_height():
    phi = torch.tensor([-0.01, 0.02, 0.001])
    assert math.isclose(float(terms.penetration(phi, 0.003, frames=5, height=2.0)), (0.013 + 0.002) / 10, rel_tol=1e-6)
    assert terms.penetration(torch.zeros(0), 0.003, 5, 2.0) == 0


def test_stay_close_weighs_each_joint():
    dx = torch.zeros(4, 2, 6)
    dx[:, 1, 0] = 0.5
    assert terms.stay_close(dx, torch.tensor([1.0, 0.05])) == 0.05 * 0.25
    assert terms.stay_close(torch.zeros(4, 2, 6), torch.ones(2)) == 0


def test_acceleration_terms_see_only_what_the_correction_adds():
    acc0 = torch.randn(10, 22, 3)
    assert terms.added_acceleration(acc0, acc0) == 0
    assert terms.acceleration_hinge(0.5 * acc0, acc0.norm(dim=-1)) == 0  # calmer than the start costs nothing
    # L1-like: one joint 0.2 heights/s² above its start's magnitude costs 0.2 / (frames × joints).
    acc = acc0.clone()
    acc[3, 7] *= 1 + 0.2 / acc0[3, 7].norm()
    assert math.isclose(float(terms.acceleration_hinge(acc, acc0.norm(dim=-1))), 0.2 / 220, rel_tol=1e-3)


def test_kept_contacts_pull_only_held_pairs_beyond_reach():
    gaps = torch.tensor([[0.05, -0.02, 0.05], [0.01, 0.05, 0.05]])
    held = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    # Only (0, 0) is held and farther than reach: (0.05 - 0.02)² / (0.01 · 2)², averaged over 2 frames.
    assert math.isclose(float(terms.kept_contacts(gaps, held, reach=0.02, height=2.0)), 0.03 ** 2 / 0.02 ** 2 / 2,
                        rel_tol=1e-5)


def test_foot_slide_counts_planted_feet_only():
    feet0 = torch.zeros(3, 4, 3)
    feet = feet0.clone()
    feet[:, 0, 0] = 0.1  # the left foot slides 10 cm
    planted = torch.zeros(3, 4)
    assert terms.foot_slide(feet, feet0, planted, 2.0) == 0
    planted[1, 0] = 1
    assert math.isclose(float(terms.foot_slide(feet, feet0, planted, 2.0)), 0.01 / 12 / 4, rel_tol=1e-5)


def test_soft_min_is_below_the_minimum_by_at_most_tau_log_n():
    d = torch.tensor([[0.3, 0.1, 0.2, 0.1001]])
    s = terms.soft_min(d, 0.005)
    assert s.shape == (1,) and 0.1 - 0.005 * math.log(4) <= float(s) <= 0.1


def test_jdm_guard_costs_only_what_the_clip_loses_beyond_the_start():
    source = torch.rand(4, 3, 3)
    src = source / source.sum(-1, keepdim=True)
    same = terms.jdm_above_start(src, src, torch.tensor(0.0))
    assert same == 0
    worse = src.clone()
    worse[0, 0, 0] += 0.3  # one row of one frame off by 0.3: the clip's error is 0.3 / (4 frames × 3 rows)
    assert math.isclose(float(terms.jdm_above_start(worse, src, torch.tensor(0.0))), 0.3 / 12, rel_tol=1e-5)
    assert terms.jdm_above_start(worse, src, torch.tensor(0.3 / 12 + 1e-4)) == 0  # no worse than the start
