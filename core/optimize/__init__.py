"""Stage II of SMT for one clip: refine a retargeted motion so it keeps the source's meaning and the arms stay
out of the body.

Adam on the target's local joint rotations (6D, Zhou et al. 2019), starting from any retargeter's output
(``core.retarget.copy.copy_retarget``, the graph network, ...), minimising, averaged over frames,

    λ_sem · ||E_source − E_target||²                    semantic consistency (paper Eq. 10), λ_sem = 0.1
  + λ_pen(i) · Σ_limb ReLU(m − Φ_body(v)) / height       penetration (paper Eq. 11), λ_pen = 1 ramped to 15
  + Σ_joints c_j ||r6_j − r6_j⁰||²                      stay close to the start (arm joints move more freely)
  + w_twist · Σ_arm bones twist_b²                       ... but forearms and upper arms hardly turn about their axes
  + w_smooth · ||Δ²_t (p − p⁰)||² (fps² / height)²       no jitter: the acceleration the correction adds
  + w_jitter · ReLU(|Δ²_t p| − |Δ²_t p⁰|) fps² / height  ... and no joint accelerating harder than it did
  + w_contact · ReLU(gap − tol / 2)² / (0.01 height)²    hand contacts the start keeps stay within tol / 2
  + w_foot · ||feet − feet⁰||² / height² on contacts     no foot skate (matters only when legs are free)
  + w_limits · Σ excess²                                 anatomical limits, widened to the start's own angles
  + w_rel · Σ w_src (d / h − d_src / h_src)²             hands keep their distances to each other, head, chest
  + w_jdm · ReLU(JDM(p, src) − JDM(p⁰, src))            the clip reads no less like the source than the start

E is the supervisor's embedding (skeletal by default; BLIP-2 or CLIP on soft renders from the front, left and
right when weights are given, see ``core.semantics``; for a video source, as in the paper, the VLM embeds the
video's own frames, cropped around the person, against the character rendered from the video's camera, beside
those three views, see :class:`.semantic.ImageTerm`), Φ the body's signed distance
(:class:`core.geometry.penetration.PenetrationModel`), m a margin of 0.3 % of the height that covers Φ's grid approximation.

Choices the paper leaves open, and why:
- The 6D angles move by a correction that is a cubic B-spline in time (knots every 0.25 s): Adam moves every
  parameter by about its step size whatever its gradient, which per-frame parameters turn into jitter.
- λ_pen ramps from 1 over the first 30 % of the steps as in the paper, but then stays at its peak (the paper
  returns to 1; 10 then, 15 since the trunk's stay-close rose to 80, see ``OptimizeConfig``): back at 1, the semantic and stay-close terms pulled hands back into bulky bodies (Pen% after
  rose from 0.1-0.3 to 0.5-1.8 % on the bench's bow clip).
- The trunk's stay-close weight was 20 (arms 0.05; 80 now, see ``OptimizeConfig``). At 1 the semantic term bent the spine to match the source's
  joint distances on another body: the chest turned 20-65° against the hips on average where the source stands
  upright or bows less (Bob's bow 43°, Mousey's call 64°: a deep bow no animator would keep), for a JDM error a
  little lower than Copy's. At 20 the chest turns 2-3° on Bob and Granny, 15° on huge-headed Mousey (whose arms
  cannot pass its head otherwise); the cost is Granny's Pen% after, 0.16 → 0.20 (of Copy's 0.61), and less of a
  JDM gain (the JDM guard still holds every clip at or below Copy's).
- Two terms keep what the paper's losses do not see. Jitter: the squared smoothness term lets small added
  accelerations through, and on slow clips (a bow, a dance at 0.1 m/s²) those are much of the clip's jitter
  (bench, pooled over 5 clips: +0.14 % on Sporty_Granny, +0.19 % on Mousey); a hinge on each joint's
  acceleration magnitude rising above the start's is L1-like and stops most of them (pooled −0.3 to −0.6 %;
  the slowest clip, Granny's dance, still gains about 5 %, 0.006 m/s²). Contacts: where the source's hand
  touches the body or the other hand and the retargeter sank it in (Mousey's fist inside the huge head), the
  penetration term alone pushed it 4-5 cm out, past the contact tolerance (3 % of the height); the hinge holds
  such hands within half the tolerance of the surface. It acts on the contacts the start has (sunk or
  touching), not on every source contact: pulling every source contact onto the mesh made the slim characters'
  fingers cut into the belly (Pen% 0.003 → 0.03).
- Hands and head (issue 18). With the arm's weight of 0.05 on the wrists too, the penetration term bent and
  twisted the wrists to get fingers out of the body (bench: hand rotation relative to the forearm changed
  18-39° on average, 95th percentile 46-91°, 156° on Bob's punch) and turned Mousey's head away from its own
  hands (22°). Now: stay-close 2 on the hands and 50 on neck and head, so shoulders and elbows do the clearing;
  anatomical limits (:mod:`.limits`: wrist, forearm twist, elbow, neck; never below what the start already
  does, so the source's own bends pass); the hands' distances to each other, the head and the chest kept at the
  source's (shares of height, weighted by closeness in the source). Bench: hands 1-4° mean, p95 3-10°, head
  0.3-2°. With the wrists held, the optimiser turned the forearms and upper arms about their own axes instead
  (pronation and humeral rotation changed 40-60° on average on Mousey's bow and call: the palms still faced
  away, edge-on to the body); a stay-close on that twist alone (``stay_close_twist``, radians²) leaves the arm
  free to swing out of the body.
- The clip's JDM error may not rise above the start's (a clip-level hinge, weight 100; issue 14): single frames
  may trade, the clip may not. Without it, pushing Mousey's fists out of its huge head raised the JDM error above
  Copy's on some clips (bench, pooled: +0.0004).
- The loss looks at the clip at 10 fps (every 3rd frame of 30 fps, every 6th of 60, ``loss_fps``); the
  correction is the same spline at every frame, so the result keeps the source's rate. The correction changes
  at most 4 times a second (its knots), so 10 samples a second pin it down: on the bench 15 samples were within
  noise of every frame (Mousey's Pen% after 0.78 → 0.55, Slim's 0.021 → 0.033) at half the time per step, and
  10 within noise of 15 (quality harness, 7 characters: Mousey 0.72 → 0.53, Granny's ratio 0.329 → 0.322, Bob
  0.021 both, JDM 0.0001-0.0013 lower) at two thirds of it (Bob's 10 s bench-app clip: 7.3 → 5.1 s).
- Only the upper body moves by default (spine, neck, head, shoulders, arms, hands): hips, legs and the root path
  stay exactly as the retargeter made them, so foot contact and skate are untouched; ``free_joints="all"``
  frees everything, and the foot term then keeps planted feet within a few millimetres.
- Penetration uses at most 384 limb vertices spread evenly over the arms (and 160 more over the fingers of a rig
  with finger bones), and evaluates a (frame, vertex) pair again only once it, or the body under it, has moved
  by its distance past the margin (:class:`~core.optimize.loop.NearBody`): this is what makes 300 frames take
  seconds on a CPU. Re-selecting the pairs near the body on a fixed schedule only let hands that the contact
  terms pulled towards the body cross the slack unseen: slim characters ended with fingers under the belly in
  clips where the source's hands rest on it (Slim's bow: Pen% 0.000 → 0.10; now 0.000).
- Where the hands touch the body or each other in the source, the loss's frame nearest each touching frame holds
  it (:meth:`core.metrics.SourceClip.every`): a clap shorter than the loss's step otherwise fell between two
  samples and came apart on the frames the loss did not see.
- A start that is the source itself on the same body (a character's own clip) is returned as it is
  (``keep_own_motion``): issue 18 asks stage II to stop at the penetration the source has on its own body, and
  there the start already is. For other sources that body is unknown (a BVH has no mesh) or a real person's (a
  video), so the target is none left.
It stops early once the loss has stopped improving for 30 steps after the ramp and returns the best step (with
15, Adam's wobble just after the ramp ended Granny's dance at 53 steps with Pen% 0.46 → 0.33 instead of 0.08).

Layout (lower modules never import higher ones):

* :mod:`.config`: :class:`OptimizeConfig`, the joints that move; :mod:`.request`: a call's inputs, checked;
* :mod:`.terms`: the loss terms as pure tensor functions; :mod:`.semantic`: the λ_sem term per supervisor;
* :mod:`.limits`: the anatomical limits table (ranges and sources) and the angles it is read on;
* :mod:`.posing`: spline controls → 6D angles → joints, skinning transforms, hand–body gaps;
* :mod:`.loop`: the fixed :class:`~.loop.Problem`, the total loss at a step, Adam's loop;
* :mod:`.refine`: :func:`optimize_motion`; :mod:`.result`: what it returns.

The metrics it reports (:class:`ClipMetrics`, :func:`measure_clip`) are :mod:`core.metrics`'.
"""
from __future__ import annotations

from ..geometry.mesh import farthest_points
from ..metrics import ClipMetrics, canonical_positions, measure_clip
from ..semantics.skeletal import character_proxy, source_proxy
from .config import UPPER_BODY, OptimizeConfig
from .posing import spline_basis
from .refine import optimize_motion, prepare_character
from .result import OptimizeResult, SemanticDistance, SemanticMetrics

__all__ = ["OptimizeConfig", "ClipMetrics", "OptimizeResult", "SemanticDistance", "SemanticMetrics", "optimize_motion", "prepare_character", "measure_clip",
           "UPPER_BODY", "canonical_positions", "character_proxy", "source_proxy", "spline_basis", "farthest_points"]
