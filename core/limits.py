"""What the tool accepts from users, in one place, each limit with the reason it is there.

Every reader of a user's file checks these before it allocates (README, "Security"): a file's header cannot
make us reserve gigabytes or loop for hours.
"""
from __future__ import annotations

__all__ = ["MAX_CLIP_SECONDS", "MAX_FPS", "MIN_FPS", "MAX_JOINTS", "MAX_HIERARCHY_DEPTH", "MAX_MOTION_VALUES",
           "MAX_MOTION_FILE_BYTES"]

MAX_CLIP_SECONDS = 600.0  # longer clips must be trimmed first: rendering and export time grow with length
MAX_FPS = 1000.0  # a frame time under 1 ms is no capture anyone makes (a 'Frame Time: 1e-9' read as 1e9 fps)
MIN_FPS = 1.0  # a frame time over 1 s is a mistake too (stop-motion keys are still sampled faster)
MAX_JOINTS = 1024  # a rig with fingers, face and props has a few hundred; mocap rigs 20-100
MAX_HIERARCHY_DEPTH = 256  # the deepest real chains (spine, tail, tentacle) are tens of bones
# Frames x channels of a motion file, checked before its frames are parsed: 10 minutes at 120 fps of a 99-joint
# Mixamo rig (300 channels) is 21.6 M values; parsing takes ~4 bytes of memory per value per copy.
MAX_MOTION_VALUES = 48_000_000
MAX_MOTION_FILE_BYTES = 512 << 20
