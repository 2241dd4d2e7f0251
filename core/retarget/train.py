"""Train the graph retargeter (SMT stage I) on this CPU and write the checkpoint shipped in assets/retarget/.

    python -m core.retarget.train                   # reproduces assets/retarget/graph_retargeter.pt
    python -m core.retarget.train --no-bandai       # without the CC BY-NC Bandai Namco clips
    python -m core.retarget.train --epochs 5 --out /tmp/quick.pt

Unsupervised, as in the paper (Eq. 2): a window of a clip is played on skeleton A (Copy's placement, see
:mod:`core.retarget.data`), the network retargets it to skeleton B (L_jdm between A and B, L_adv from a
discriminator that has seen Copy motions on B), back to A (L_cyc) and onto A itself (L_rec, zero by
construction with the network's ``subtract_own``, so that pass is skipped). Adam, batch 16 and 80 epochs as
in the paper, but lr 1e-3 instead of 3e-4 (in short runs here 3e-4 left the network at Copy after 10 epochs).
An epoch is as many 64-frame windows as the training clips have frames at 30 fps.

One torch thread by default: on the two shared cores a step took 0.2 s with one thread, 1.3 s with two, and
11 s with two under ``torch.use_deterministic_algorithms`` (its slow deterministic scatter). With one thread
the run is bit-for-bit reproducible for a given seed.

Time on the development machine (2 shared CPU cores): see assets/retarget/MODEL_CARD.md (printed at start).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from .data import CACHE_DIR, HELD_BACK_STYLES, SHARED_DATA, Batch, BatchSampler, Clip, load_clips, place_by_copy, skeleton_pool
from ..metrics import jdm_error
from ..rotations import quat_to_matrix
from .losses import (Stage1Losses, Stage1Weights, discriminator_loss, feature_loss, generator_adversarial_loss,
                     jdm_loss, stage1_total)
from .model import DEFAULT_CHECKPOINT, NetworkRetargeter, save_checkpoint
from .network import (GraphRetargeter, MotionDiscriminator, NetworkConfig, compose_correction, edge_features,
                      heading_rotation, node_features, root_velocity, skeleton_height, world_rotations)

__all__ = ["TrainConfig", "Played", "play", "stage1_step", "train", "evaluate_canonical", "main"]

EXPECTED_MINUTES = 8  # measured wall time of the default run here (nice, 1 thread, 2 cores shared with others)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 80
    batch_size: int = 16
    window: int = 64
    lr: float = 1e-3
    seed: int = 0
    threads: int = 1
    bandai: bool = True
    use_root_mlp: bool = False


@dataclass
class Played:
    """A canonical motion played on skeletons: node features ``(B, T, 22, 9)``, root velocity ``(B, T, 1, 3)``,
    positions ``(B, T, 22, 3)``."""

    q: Tensor
    root_vel: Tensor
    positions: Tensor


def play(rotations: Tensor, root: Tensor, feet: Tensor, source_offsets: Tensor, offsets: Tensor,
         root_correction: Tensor | None = None) -> Played:
    """Play rotations ``(B, T, 22, 3, 3)`` on skeletons ``(B, 22, 3)`` with Copy's root placement.

    ``root_correction`` ``(B, T, 3)`` (heading frame, heights) is added to the root horizontally.
    """
    world = world_rotations(rotations)
    positions, new_root = place_by_copy(world, root, feet, source_offsets, offsets)
    h = skeleton_height(offsets)
    if root_correction is not None:
        shift = (heading_rotation(rotations[..., 0, :, :]) @ root_correction[..., None])[..., 0] * h[:, None, None]
        shift = shift * shift.new_tensor([1.0, 0.0, 1.0])
        positions, new_root = positions + shift[..., None, :], new_root + shift
    return Played(node_features(rotations, positions, h), root_velocity(new_root, rotations[..., 0, :, :], h)[..., None, :],
                  positions)


def stage1_step(model: GraphRetargeter, disc: MotionDiscriminator | None, batch: Batch,
                weights: Stage1Weights = Stage1Weights()) -> tuple[Stage1Losses, Tensor | None]:
    """Generator losses of one batch, and the discriminator's loss (None without a discriminator)."""
    b = batch
    h_a, h_b = skeleton_height(b.offsets_a), skeleton_height(b.offsets_b)
    e_a, e_b = edge_features(b.offsets_a, h_a), edge_features(b.offsets_b, h_b)
    src = (b.root, b.feet, b.source_offsets)
    a = play(b.rotations, *src, b.offsets_a)

    if model.config.subtract_own:  # A → A is the identity by construction: L_rec = 0 exactly
        rec = a.q.new_zeros(())
    else:
        out_aa = model(a.q, e_a, e_a)
        aa = play(compose_correction(b.rotations, out_aa.delta), *src, b.offsets_a, out_aa.root)
        rec = feature_loss(aa.q, a.q) + feature_loss(aa.root_vel, a.root_vel)

    out_ab = model(a.q, e_a, e_b)
    rot_b = compose_correction(b.rotations, out_ab.delta)
    bb = play(rot_b, *src, b.offsets_b, out_ab.root)
    out_ba = model(bb.q, e_b, e_a)
    ba = play(compose_correction(rot_b, out_ba.delta), *src, b.offsets_a, out_ba.root)
    cyc = feature_loss(ba.q, a.q) + feature_loss(ba.root_vel, a.root_vel)
    jdm = jdm_loss(a.positions, bb.positions)

    d_loss = None
    if disc is not None:
        real = play(b.real_rotations, b.real_root, b.real_feet, b.real_source_offsets, b.offsets_b)
        adv = generator_adversarial_loss(disc(bb.q, bb.root_vel[..., 0, :], e_b))
        d_loss = discriminator_loss(disc(real.q, real.root_vel[..., 0, :], e_b),
                                    disc(bb.q.detach(), bb.root_vel[..., 0, :].detach(), e_b))
    else:
        adv = jdm.new_zeros(())
    return stage1_total(rec, cyc, adv, jdm, weights), d_loss


@torch.no_grad()
def evaluate_canonical(model: GraphRetargeter, clips: list[Clip], targets: dict[str, Tensor]) -> dict[str, float]:
    """JDM error of Copy and of the network on the held-back clips (30 fps), averaged over ``targets``.

    Canonical space only (no rig conversion): a quick check during training; bench/bench_retarget.py measures
    the full path.
    """
    copy_err, net_err, n = 0.0, 0.0, 0
    for clip in clips:
        if not clip.held_back or clip.fps != 30.0:
            continue
        rot = quat_to_matrix(clip.rotations)[None]
        src = (clip.root[None], clip.feet[None], clip.offsets[None])
        a = play(rot, *src, clip.offsets[None])
        h_a = skeleton_height(clip.offsets[None])
        for off in targets.values():
            off = off[None]
            h_b = skeleton_height(off)
            copy = play(rot, *src, off)
            out = model(a.q, edge_features(clip.offsets[None], h_a), edge_features(off, h_b))
            net = play(compose_correction(rot, out.delta), *src, off)
            copy_err += float(jdm_error(a.positions, copy.positions))
            net_err += float(jdm_error(a.positions, net.positions))
            n += 1
    return {"copy_jdm": copy_err / max(n, 1), "network_jdm": net_err / max(n, 1), "pairs": n}


def train(config: TrainConfig, out: Path, data_dir: Path = SHARED_DATA, cache_dir: Path | None = CACHE_DIR,
          log=print) -> dict:
    """Train, write the checkpoint to ``out``, and return the training summary (also stored in it)."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(config.threads == 1)  # multi-threaded deterministic kernels crawl here
    t0 = time.perf_counter()
    clips = load_clips(data_dir, bandai=config.bandai, cache_dir=cache_dir)
    pool = skeleton_pool(data_dir)
    sampler = BatchSampler(clips, pool, window=config.window, seed=config.seed)
    steps_per_epoch = math.ceil(sampler.frames / (config.window * config.batch_size))
    held = sorted({c.name for c in clips if c.held_back})
    log(f"data: {len(sampler.clips) // 2} training clips ({sampler.frames} frames at 30 fps, also at 60 fps), "
        f"{len(held)} held back; {len(pool)} pool skeletons + random ones; prepared in {time.perf_counter() - t0:.0f}s")

    model = GraphRetargeter(NetworkConfig())
    disc = MotionDiscriminator()
    opt_g = torch.optim.Adam(model.parameters(), lr=config.lr)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr)
    history: list[dict[str, float]] = []
    t_train = time.perf_counter()
    for epoch in range(config.epochs):
        sums: dict[str, float] = {}
        for _ in range(steps_per_epoch):
            batch = sampler.sample(config.batch_size)
            losses, d_loss = stage1_step(model, disc, batch)
            opt_g.zero_grad()
            losses.total.backward()
            opt_g.step()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            for k, v in {**losses.as_floats(), "disc": float(d_loss.detach())}.items():
                sums[k] = sums.get(k, 0.0) + v / steps_per_epoch
        history.append(sums)
        elapsed = time.perf_counter() - t_train
        eta = elapsed / (epoch + 1) * (config.epochs - epoch - 1)
        log(f"epoch {epoch + 1:3d}/{config.epochs}  " + "  ".join(f"{k} {v:.4g}" for k, v in sums.items())
            + f"  [{elapsed / 60:.1f} min, ~{eta / 60:.1f} min left]")

    evaluation = evaluate_canonical(model, clips, pool)
    seconds = time.perf_counter() - t0
    summary = {
        "summary": f"trained {config.epochs} epochs on {'Bandai Namco + CMU' if config.bandai else 'CMU only'}",
        "config": asdict(config),
        "training_clips": sorted({c.name for c in sampler.clips}),
        "held_back_clips": held,
        "held_back_rule": f"Bandai Namco styles {', '.join(HELD_BACK_STYLES)}; the Mixamo clips",
        "licence": ("CC BY-NC 4.0 (non-commercial): trained on the Bandai Namco Research Motiondataset-1"
                    if config.bandai else "trained on CMU motion capture only (free for any use; cite mocap.cs.cmu.edu)"),
        "train_seconds": round(seconds, 1),
        "threads": config.threads,
        "final_losses": {k: round(v, 6) for k, v in history[-1].items()} if history else {},
        "first_losses": {k: round(v, 6) for k, v in history[0].items()} if history else {},
        "held_back_canonical_jdm": {k: round(v, 5) for k, v in evaluation.items()},
        "torch": str(torch.__version__),
    }
    save_checkpoint(out, model, use_root_mlp=config.use_root_mlp, meta=summary)
    NetworkRetargeter.load(out)  # what the app will do: fail here, not at the user's
    log(f"held-back JDM error (canonical, {evaluation['pairs']} clip-character pairs): "
        f"copy {evaluation['copy_jdm']:.4f}, network {evaluation['network_jdm']:.4f}")
    log(f"wrote {out} in {seconds / 60:.1f} min")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--window", type=int, default=d.window, help="frames per training window")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads (default 1: fastest here, and reproducible)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="shared data folder (motion/, characters/)")
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="folder for prepared clips")
    parser.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint to write")
    parser.add_argument("--no-bandai", action="store_true", help="leave out the CC BY-NC Bandai Namco clips")
    parser.add_argument("--root-mlp", action="store_true", help="let the checkpoint use the root MLP at inference")
    parser.add_argument("--log", type=Path, help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    config = TrainConfig(args.epochs, args.batch_size, args.window, args.lr, args.seed, args.threads,
                         not args.no_bandai, args.root_mlp)
    if config == TrainConfig():
        print(f"training the shipped configuration: about {EXPECTED_MINUTES} minutes on a 2-core CPU", flush=True)
    else:
        print(f"the default run takes about {EXPECTED_MINUTES} minutes on a 2-core CPU; time scales with --epochs",
              flush=True)
    summary = train(config, args.out, args.data, args.cache, log=lambda s: print(s, flush=True))
    if args.log:
        args.log.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
