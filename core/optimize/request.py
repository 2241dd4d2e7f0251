"""What :func:`~core.optimize.optimize_motion` was asked, checked up front."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..character import Character
from ..motion import Motion
from .config import OptimizeConfig

__all__ = ["Request"]


@dataclass(frozen=True)
class Request:
    """What :func:`~core.optimize.optimize_motion` was asked, see its arguments. supervisor: an encoder (None: the skeletal
    one); description: plain words on it from :func:`core.semantics.select_supervisor`, if any."""

    source: Motion
    start: Motion
    character: Character
    supervisor: Any
    description: str | None
    config: OptimizeConfig
    device: torch.device
    measure: bool
    max_mesh_frames: int | None
    source_frames: Any = None
    source_camera: Any = None

    def every(self, step: int) -> "Request":
        """The same request on frames ``0, step, 2·step, …`` (source, start and source frames alike)."""
        if step == 1:
            return self
        frames, camera = self.source_frames, self.source_camera
        if frames is not None:
            frames = frames.every(step) if hasattr(frames, "every") else frames[::step]
        if camera is not None and hasattr(camera, "every"):  # a per-frame VideoView; a fixed Camera stays
            camera = camera.every(step)
        return replace(self, source=self.source.every(step), start=self.start.every(step), source_frames=frames,
                       source_camera=camera)

    def check(self) -> None:
        """Raises ValueError for inputs the optimiser cannot use."""
        sk = self.character.skeleton
        if self.start.skeleton.names != sk.names or not np.allclose(self.start.skeleton.offsets, sk.offsets, atol=1e-6):
            raise ValueError(f"the start motion is not on character {self.character.name!r}'s skeleton")
        if self.source.num_frames != self.start.num_frames:
            raise ValueError(f"source and start differ in length: {self.source.num_frames} vs "
                             f"{self.start.num_frames} frames")
        self.config.validate()
        T = self.start.num_frames
        if self.source_frames is not None and len(self.source_frames) != T:
            raise ValueError(f"{len(self.source_frames)} source frames for a {T}-frame motion")
        if self.source_camera is not None and hasattr(self.source_camera, "every") and len(self.source_camera) != T:
            raise ValueError(f"a video view of {len(self.source_camera)} frames for a {T}-frame motion")
