"""BVH (Biovision Hierarchy) motion files: reading any common dialect into a :class:`Motion`, writing one back.

Conventions (DESIGN §2): the returned motion is in metres, Y up, quaternions (w, x, y, z), matrices act on
column vectors. BVH rests are world-aligned, so ``rest_rotations`` are identity and a joint's local rotation is
its Euler channels composed in the order listed: ``CHANNELS 3 Zrotation Xrotation Yrotation`` means
``R = Rz · Rx · Ry`` (intrinsic axes as listed, degrees).

What the reader does with the dialects met in practice:

* **End Sites** become leaf joints named ``<parent>_End`` (a numeric suffix if that name is taken) flagged in
  ``Skeleton.end_sites``, with identity rotations; :func:`write_bvh` writes them back as ``End Site`` blocks.
* **Position channels** of the root give ``Motion.root_positions`` (they replace the root's OFFSET; an axis
  without a channel keeps the OFFSET's value). Position channels of any other joint also replace its OFFSET
  (Blender's reading): their mean over the clip becomes the joint's offset, with a warning when they vary by more
  than 1 mm, since a :class:`Motion` only animates the root's translation.
* **Root folding**: Bandai Namco files put a ``joint_Root`` above ``Hips``; both have six channels and ``Hips``
  carries the moving position (in a few clips ``joint_Root`` slides too). A :class:`Motion` animates only the
  root's translation, so when the root has a single child joint with position channels, and either the root's
  channels are constant over the clip or the child's position moves, the root's transform is composed into the
  child's every frame (``[R_r | p_r]·[R_c | p_c]``, exact) and the child becomes the root. ``fold_root=False``
  keeps the file's hierarchy. (A ``Hips`` root above a rotation-only ``Pelvis``, as in some Mixamo exports, is
  left alone.)
* **Units** (``units="auto"``): the figure's size is the largest bounding-box extent of the posed world joint
  positions, maximised over up to 32 evenly spaced frames (standing: about the height; T-pose: the arm span;
  lying: the length), in file units. Then

  ====================  =============================  ==========================================
  size in file units    assumed unit                   factor to metres
  ====================  =============================  ==========================================
  [0.2, 6)              metres                         1
  [6, 50)               CMU cgspeed units              0.056444 (= 2.54 cm / 0.45, the ASF scale)
  [50, 500)             centimetres                    0.01
  [500, 5000)           millimetres                    0.001
  otherwise             unknown: kept as metres        1 (with a warning)
  ====================  =============================  ==========================================

  The band edges sit between where figures of 0.5–3 m land in neighbouring units. Measured on the shared files
  (file units): CMU cgspeed 02_01: 25; CMU DAZ-friendly 08_01: 151; CC_Base 002_03: 177; Mixamo (R2ET and the
  Sporty Granny character): 167–216; Bandai Namco: 120–176 (a forward-leaning dash is the smallest). Inches and
  feet are not guessed (they overlap centimetres and CMU units for real figures): pass ``units`` explicitly
  ("m", "cm", "mm", "inch", "ft", "cmu" or a float factor to metres) when you know them.

Every malformed input raises :class:`BVHError` (an :class:`~core.errors.InputError`, so a ``ValueError``) with a one-line message naming the file and,
where it helps, the line.
"""
from __future__ import annotations

import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import InputError
from ..limits import (MAX_CLIP_SECONDS, MAX_FPS, MAX_HIERARCHY_DEPTH, MAX_JOINTS, MAX_MOTION_FILE_BYTES,
                      MAX_MOTION_VALUES, MIN_FPS)
from .files import atomic_file
from .uploads import UnsafeInputError, check_input_file
from ..motion import Motion
from ..skeleton import Skeleton

__all__ = ["BVHError", "read_bvh", "parse_bvh_text", "write_bvh", "unit_scale_for_size", "UNIT_SCALES"]

UNIT_SCALES: dict[str, float] = {
    "m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0,
    "cm": 0.01, "mm": 0.001, "dm": 0.1,
    "inch": 0.0254, "in": 0.0254, "inches": 0.0254,
    "ft": 0.3048, "feet": 0.3048, "foot": 0.3048,
    "cmu": 0.0254 / 0.45,
}

# (lower bound, upper bound, factor, label) on the figure's size in file units; see the module docstring.
_AUTO_UNIT_BANDS: tuple[tuple[float, float, float, str], ...] = (
    (0.2, 6.0, 1.0, "metres"),
    (6.0, 50.0, 0.0254 / 0.45, "CMU units"),
    (50.0, 500.0, 0.01, "centimetres"),
    (500.0, 5000.0, 0.001, "millimetres"),
)

_POSITION = {"xposition": 0, "yposition": 1, "zposition": 2}
_ROTATION = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}
_CHANNEL_NAMES = {**{k: k[0].upper() + "position" for k in _POSITION}, **{k: k[0].upper() + "rotation" for k in _ROTATION}}


class BVHError(InputError):
    """A BVH file (or text) that cannot be read; the message names the file and, where it helps, the line."""


def unit_scale_for_size(size: float) -> tuple[float, str]:
    """The factor to metres, and the unit's name, for a figure whose largest extent is ``size`` file units."""
    for lo, hi, factor, label in _AUTO_UNIT_BANDS:
        if lo <= size < hi:
            return factor, label
    return 1.0, "unknown (kept as metres)"


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------

@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str] = field(default_factory=list)  # canonical spellings, e.g. "Zrotation"
    end_site: bool = False
    line: int = 0
    first_column: int = 0  # index of this joint's first channel in a frame line


class _Tokens:
    """Whitespace tokens of the header with their 1-based line numbers."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.source = source
        self.items: list[tuple[str, int]] = []
        self.lines = lines
        self.pos = 0

    @classmethod
    def from_header(cls, lines: list[str], source: str) -> "_Tokens":
        tokens = cls(lines, source)
        for n, line in enumerate(lines, start=1):
            for tok in line.replace("{", " { ").replace("}", " } ").split():
                tokens.items.append((tok, n))
        return tokens

    def error(self, message: str, line: int | None = None) -> BVHError:
        if line is None:
            line = self.items[self.pos][1] if self.pos < len(self.items) else len(self.lines)
        return BVHError(f"{self.source}, line {line}: {message}")

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def line(self) -> int:
        return self.items[self.pos][1] if self.pos < len(self.items) else len(self.lines)

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise BVHError(f"{self.source}: file ends inside the HIERARCHY section while expecting {what} "
                           "(truncated file?)")
        tok = self.items[self.pos][0]
        self.pos += 1
        return tok

    def expect(self, word: str) -> None:
        line = self.line()
        tok = self.next(repr(word))
        if tok.upper() != word.upper():
            raise self.error(f"expected {word!r} here", line)

    def number(self, what: str) -> float:
        line = self.line()
        tok = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise self.error(f"expected a number for {what}", line) from None
        if not math.isfinite(value):
            raise self.error(f"{what} is not finite", line)
        return value

    def rest_of_line(self) -> list[str]:
        """The tokens from the current one to the end of its line, stopping before a '{' (a joint's name)."""
        if self.pos >= len(self.items):
            return []
        line = self.items[self.pos][1]
        out = []
        while self.pos < len(self.items) and self.items[self.pos][1] == line and self.items[self.pos][0] != "{":
            out.append(self.items[self.pos][0])
            self.pos += 1
        return out


def _parse_hierarchy(tok: _Tokens) -> list[_Joint]:
    first = tok.peek()
    if first is None:
        raise BVHError(f"{tok.source}: empty file (no HIERARCHY section)")
    if first.upper() != "HIERARCHY":
        raise tok.error("not a BVH file: expected 'HIERARCHY' at the start")
    tok.next("HIERARCHY")
    if (tok.peek() or "").upper() != "ROOT":
        raise tok.error("expected 'ROOT' after HIERARCHY" if tok.peek() else
                        "file ends after HIERARCHY (truncated file?)")
    joints: list[_Joint] = []
    names: set[str] = set()
    column = 0

    def parse_joint(parent: int, keyword_line: int, end_site: bool, depth: int = 1) -> None:
        nonlocal column
        if depth > MAX_HIERARCHY_DEPTH:
            raise tok.error(f"the joint hierarchy is nested more than {MAX_HIERARCHY_DEPTH} levels deep", keyword_line)
        if end_site:
            base = f"{joints[parent].name}_End"
            name, k = base, 1
            while name in names:
                k += 1
                name = f"{base}{k}"
        else:
            parts = tok.rest_of_line()
            if not parts:
                raise tok.error("a joint needs a name", keyword_line)
            name = " ".join(parts)
            if name in names:
                raise tok.error("this joint's name is used twice in the file", keyword_line)
        names.add(name)
        tok.expect("{")
        index = len(joints)
        joint = _Joint(name, parent, np.zeros(3), end_site=end_site, line=keyword_line)
        joints.append(joint)
        seen_offset = False
        while True:
            line = tok.line()
            word = tok.next(f"'}}' closing the joint of line {keyword_line}")
            key = word.upper()
            if key == "}":
                break
            if key == "OFFSET":
                joint.offset = np.array([tok.number("OFFSET") for _ in range(3)])
                seen_offset = True
            elif key == "CHANNELS":
                if end_site:
                    raise tok.error("an End Site cannot have CHANNELS", line)
                if joint.channels:
                    raise tok.error(f"the joint of line {keyword_line} has two CHANNELS lines", line)
                count_line = tok.line()
                count_tok = tok.next("the channel count")
                if not count_tok.isdigit():
                    raise tok.error("expected a channel count after CHANNELS", count_line)
                for _ in range(int(count_tok)):
                    ch_line = tok.line()
                    ch = tok.next("a channel name")
                    canonical = _CHANNEL_NAMES.get(ch.lower())
                    if canonical is None:
                        raise tok.error("unknown channel name (expected Xposition, Yposition, Zposition, Xrotation, "
                                        "Yrotation or Zrotation)", ch_line)
                    if canonical in joint.channels:
                        raise tok.error(f"channel {canonical} listed twice for the joint of line {keyword_line}", ch_line)
                    joint.channels.append(canonical)
                joint.first_column = column
                column += len(joint.channels)
            elif key == "JOINT":
                if end_site:
                    raise tok.error("an End Site cannot have child joints", line)
                parse_joint(index, line, end_site=False, depth=depth + 1)
            elif key == "END":
                site_line = tok.line()
                site = tok.next("'Site'")
                if site.upper() != "SITE":
                    raise tok.error("expected 'End Site'", site_line)
                if end_site:
                    raise tok.error("an End Site cannot contain another End Site", line)
                parse_joint(index, line, end_site=True, depth=depth + 1)
            elif key == "ROOT":
                raise tok.error("a second ROOT inside a joint (unbalanced braces?)", line)
            elif key == "MOTION":
                raise tok.error(f"MOTION section starts before the joint of line {keyword_line} is closed (unbalanced braces)", line)
            else:
                raise tok.error(f"unexpected word inside the joint of line {keyword_line} (expected OFFSET, CHANNELS, JOINT, End Site or '}}')", line)
        if not seen_offset:
            raise tok.error("this joint has no OFFSET", joint.line)

    root_line = tok.line()
    tok.next("ROOT")
    parse_joint(-1, root_line, end_site=False)
    nxt = tok.peek()
    if nxt is not None and nxt.upper() == "ROOT":
        raise tok.error("several ROOT hierarchies in one file are not supported")
    if nxt is None:
        raise BVHError(f"{tok.source}: no MOTION section after the hierarchy (truncated file?)")
    if nxt.upper() != "MOTION":
        raise tok.error("expected 'MOTION' after the hierarchy")
    return joints


def _split_header(text: str, source: str) -> tuple[list[str], int, int, float, str]:
    """Header lines (up to and including 'Frame Time'), the first data line's number, frames, frame time, data."""
    m = re.search(r"^[ \t]*MOTION\b", text, flags=re.MULTILINE | re.IGNORECASE)
    if m is None:
        header_lines = text.splitlines()
        # Parse the hierarchy anyway: it names the real problem (truncated inside the hierarchy, say) when there is one.
        _parse_hierarchy(_Tokens.from_header(header_lines, source))
        raise BVHError(f"{source}: no MOTION section after the hierarchy (truncated file?)")
    frames_re = re.compile(r"[ \t]*Frames[ \t]*:?[ \t]*(\S*)[ \t]*\r?\n", re.IGNORECASE)
    time_re = re.compile(r"[ \t]*Frame[ \t]+Time[ \t]*:?[ \t]*(\S*)[ \t]*(?:\r?\n|$)", re.IGNORECASE)
    motion_line = text.count("\n", 0, m.start()) + 1
    pos = text.find("\n", m.end())
    rest_of_motion_line = text[m.end():pos if pos >= 0 else len(text)].strip()
    if rest_of_motion_line:
        raise BVHError(f"{source}, line {motion_line}: unexpected text after MOTION on the same line")
    if pos < 0:
        raise BVHError(f"{source}, line {motion_line}: file ends after MOTION, no 'Frames:' line (truncated file?)")
    pos += 1
    # Skip blank lines before "Frames:".
    line_no = motion_line + 1
    while True:
        blank = re.match(r"[ \t]*\r?\n", text[pos:pos + 256])
        if not blank:
            break
        pos += blank.end()
        line_no += 1
    fm = frames_re.match(text, pos)
    if fm is None:
        got = text[pos:text.find("\n", pos) if text.find("\n", pos) >= 0 else len(text)].strip()
        if not got:
            raise BVHError(f"{source}, line {line_no}: file ends after MOTION, no 'Frames:' line (truncated file?)")
        raise BVHError(f"{source}, line {line_no}: expected 'Frames: <count>' after MOTION")
    if not fm.group(1).isdigit():
        raise BVHError(f"{source}, line {line_no}: the frame count is not a whole number")
    frames = int(fm.group(1))
    if frames == 0:
        raise BVHError(f"{source}, line {line_no}: 'Frames: 0': the file holds no animation")
    pos = fm.end()
    line_no += 1
    tm = time_re.match(text, pos)
    if tm is None:
        got = text[pos:text.find("\n", pos) if text.find("\n", pos) >= 0 else len(text)].strip()
        if not got:
            raise BVHError(f"{source}, line {line_no}: file ends before the 'Frame Time:' line (truncated file?)")
        raise BVHError(f"{source}, line {line_no}: expected 'Frame Time: <seconds>'")
    try:
        frame_time = float(tm.group(1))
    except ValueError:
        raise BVHError(f"{source}, line {line_no}: the frame time is not a number") from None
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise BVHError(f"{source}, line {line_no}: the frame time must be a positive number of seconds")
    if not MIN_FPS <= 1.0 / frame_time <= MAX_FPS:
        raise BVHError(f"{source}, line {line_no}: a frame time of {frame_time:.3g} s is {1.0 / frame_time:.3g} "
                       f"frames per second; accepted: {MIN_FPS:g} to {MAX_FPS:g}")
    if (frames - 1) * frame_time > MAX_CLIP_SECONDS:
        raise BVHError(f"{source}: {frames} frames at {1.0 / frame_time:.3g} fps is {frames * frame_time / 60:.1f} "
                       f"minutes; the limit is {MAX_CLIP_SECONDS / 60:.0f} minutes: trim it first")
    header_lines = text[:m.end()].splitlines()
    return header_lines, line_no + 1, frames, frame_time, text[tm.end():]


def _parse_frames(data: str, first_line: int, frames: int, channels: int, source: str) -> np.ndarray:
    """``(frames, channels)`` values, parsed in one numpy call; precise errors from a slow scan on failure."""
    if channels == 0:
        raise BVHError(f"{source}: the hierarchy declares no channels at all")
    values: np.ndarray | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A list of lines, not a StringIO: a third of the memory (a StringIO holds 4 bytes per character).
            values = np.loadtxt(data.splitlines(), dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        values = None
    if values is not None and values.shape[0] >= frames and values.shape[1] == channels:
        if values.shape[0] > frames:
            warnings.warn(f"{source}: {values.shape[0]} frame lines but 'Frames: {frames}'; extra lines ignored",
                          stacklevel=3)
            values = values[:frames]
        if not np.isfinite(values).all():
            row = int(np.nonzero(~np.isfinite(values).all(axis=1))[0][0])
            _scan_frames(data, first_line, frames, channels, source, stop_at_row=row)
        return values
    # The declared frames are fine (the scan raises otherwise); what follows them is not: read only those.
    used = _scan_frames(data, first_line, frames, channels, source)
    warnings.warn(f"{source}: unreadable lines after the {frames} declared frames ignored", stacklevel=3)
    return np.loadtxt(data.splitlines()[:used], dtype=np.float64, comments=None, ndmin=2)


def _scan_frames(data: str, first_line: int, frames: int, channels: int, source: str,
                 stop_at_row: int | None = None) -> int:
    """Walk the frame lines one by one and raise a :class:`BVHError` at the first bad one; without one, return
    how many text lines the declared frames take."""
    row = 0
    last_line = first_line
    for n, line in enumerate(data.splitlines(), start=first_line):
        parts = line.split()
        if not parts:
            continue
        if row >= frames:
            break
        last_line = n
        if len(parts) != channels:
            hint = " (file truncated?)" if len(parts) < channels and row == frames - 1 else ""
            raise BVHError(f"{source}, line {n}: frame {row + 1} has {len(parts)} values, the hierarchy declares "
                           f"{channels} channels{hint}")
        for k, p in enumerate(parts):
            try:
                v = float(p)
            except ValueError:
                raise BVHError(f"{source}, line {n}: value {k + 1} of frame {row + 1} is not a number") from None
            if not math.isfinite(v):
                raise BVHError(f"{source}, line {n}: value {k + 1} of frame {row + 1} is not finite")
        row += 1
        if stop_at_row is not None and row > stop_at_row:
            break
    if row < frames and stop_at_row is None:
        raise BVHError(f"{source}, line {last_line}: file ends after {row} of {frames} frames (truncated file?)")
    return last_line - first_line + 1


def _euler_to_quat(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """``(..., k)`` Euler angles in degrees, intrinsic ``order`` (e.g. "ZXY": R = Rz·Rx·Ry) → ``(..., 4)`` (w, x, y, z).

    The product of the per-axis half-angle quaternions, in numpy (several times faster than scipy's from_euler,
    which dominated parsing; the tests check it against scipy).
    """
    half = np.radians(angles_deg) * 0.5
    c, s = np.cos(half), np.sin(half)
    out = None
    for k, axis in enumerate(order):
        q = np.zeros(angles_deg.shape[:-1] + (4,))
        q[..., 0] = c[..., k]
        q[..., 1 + "XYZ".index(axis)] = s[..., k]
        out = q if out is None else _quat_mul(out, q)
    assert out is not None
    return out


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``(..., 4)`` in numpy, the same formula as :func:`core.rotations.quat_multiply`.

    Kept in numpy on purpose: on a busy machine torch's thread pool stalls on these mid-sized elementwise ops and
    parsing ran 23x slower (3.6k vs 84k frames/s on a Bandai clip, measured with the other core taken).
    """
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def _round_fps(frame_time: float) -> float:
    fps = 1.0 / frame_time
    for step, tol in ((1.0, 2e-4), (0.01, 1e-4)):
        candidate = round(fps / step) * step
        if candidate > 0 and abs(fps - candidate) <= tol * fps:
            return float(round(candidate, 6))
    return fps


def _resolve_units(units: str | float) -> float | None:
    if isinstance(units, (int, float)) and not isinstance(units, bool):
        if not (math.isfinite(units) and units > 0):
            raise ValueError(f"units as a number must be a positive factor to metres, got {units!r}")
        return float(units)
    if not isinstance(units, str):
        raise ValueError(f"units must be 'auto', a unit name or a factor to metres, got {units!r}")
    key = units.strip().lower()
    if key == "auto":
        return None
    if key not in UNIT_SCALES:
        raise ValueError(f"unknown units {units!r}: use 'auto', one of {', '.join(sorted(set(UNIT_SCALES)))} "
                         "or a factor to metres")
    return UNIT_SCALES[key]


def parse_bvh_text(text: str, units: str | float = "auto", name: str = "", source: str = "<text>",
                   fold_root: bool = True) -> Motion:
    """A :class:`Motion` from the text of a BVH file; see the module docstring for the dialect rules.

    Args:
        text: the whole file.
        units: "auto" (from the figure's size), a unit name ("m", "cm", "mm", "inch", "ft", "cmu") or a float
            factor from file units to metres.
        name: the motion's name.
        source: how error messages name the input (the file name).
        fold_root: fold a root into its single child that carries the translation (Bandai Namco's
            ``joint_Root``; see the module docstring).

    Raises:
        BVHError: for any malformed input.
    """
    scale = _resolve_units(units)
    if "\x00" in text:
        raise BVHError(f"{source}: not a BVH file (binary data)")
    header_lines, first_data_line, frames, frame_time, data = _split_header(text, source)
    tokens = _Tokens.from_header(header_lines, source)
    joints = _parse_hierarchy(tokens)
    tokens.next("MOTION")
    if tokens.peek() is not None:
        raise tokens.error("unexpected text after MOTION")
    n_channels = sum(len(j.channels) for j in joints)
    if len(joints) > MAX_JOINTS:
        raise BVHError(f"{source}: {len(joints)} joints; at most {MAX_JOINTS} are accepted")
    if frames * n_channels > MAX_MOTION_VALUES:
        raise BVHError(f"{source}: {frames} frames of {n_channels} channels is more motion data than one job takes "
                       f"({MAX_MOTION_VALUES / 1e6:.0f} million values); trim the clip or use fewer joints")
    values = _parse_frames(data, first_data_line, frames, n_channels, source)
    return _build_motion(joints, values, frame_time, scale, name, source, fold_root)


def _tracks(joints: list[_Joint], values: np.ndarray) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Per-joint ``(T, 3)`` position tracks (None without position channels; an axis without a channel keeps the
    OFFSET's value) and ``(T, J, 4)`` rotations, converted with one scipy call per rotation order."""
    T, J = values.shape[0], len(joints)
    positions: list[np.ndarray | None] = []
    rotations = np.zeros((T, J, 4))
    rotations[..., 0] = 1.0
    groups: dict[str, tuple[list[int], list[list[int]]]] = {}
    for j, joint in enumerate(joints):
        cols = {ch: joint.first_column + k for k, ch in enumerate(joint.channels)}
        pos_axes = [a for a in range(3) if "XYZ"[a] + "position" in cols]
        if pos_axes:
            track = np.tile(joint.offset, (T, 1))
            for a in pos_axes:
                track[:, a] = values[:, cols["XYZ"[a] + "position"]]
            positions.append(track)
        else:
            positions.append(None)
        rot_channels = [ch for ch in joint.channels if ch.endswith("rotation")]
        if rot_channels:
            members, columns = groups.setdefault("".join(ch[0] for ch in rot_channels), ([], []))
            members.append(j)
            columns.append([cols[ch] for ch in rot_channels])
    chunk = 4096  # frames per conversion: its temporaries (~6 copies of the angles) stay small on long clips
    for order, (members, columns) in groups.items():
        columns_arr = np.asarray(columns)
        for start in range(0, T, chunk):
            rotations[start:start + chunk, members] = _euler_to_quat(values[start:start + chunk][:, columns_arr], order)
    return positions, rotations


def _world_positions(parents: tuple[int, ...], offsets: np.ndarray, rotations: np.ndarray,
                     root_positions: np.ndarray) -> np.ndarray:
    """``(F, J, 3)`` world joint positions (identity rests) from ``(F, J, 4)`` local rotations, in numpy."""
    F, J = rotations.shape[:2]
    local = Rotation.from_quat(rotations.reshape(-1, 4), scalar_first=True).as_matrix().reshape(F, J, 3, 3)
    world = np.empty_like(local)
    pos = np.empty((F, J, 3))
    for j, p in enumerate(parents):
        if p < 0:
            world[:, j], pos[:, j] = local[:, j], root_positions
        else:
            world[:, j] = world[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + world[:, p] @ offsets[j]
    return pos


def _figure_size(skeleton: Skeleton, rotations: np.ndarray, root_positions: np.ndarray) -> float:
    """The largest bounding-box extent of the posed figure, maximised over up to 32 evenly spaced frames."""
    T = rotations.shape[0]
    frames = np.unique(np.linspace(0, T - 1, min(T, 32)).round().astype(int))
    raw = _world_positions(skeleton.parents, skeleton.offsets, rotations[frames], root_positions[frames])
    return float((raw.max(axis=1) - raw.min(axis=1)).max())


def _make_continuous(q: np.ndarray) -> np.ndarray:
    """Flip quaternion signs along time (axis 0) so consecutive ones have a non-negative dot product (in place);
    the numpy twin of :func:`core.rotations.quat_make_continuous`."""
    if q.shape[0] > 1:
        dots = np.einsum("tjc,tjc->tj", q[1:], q[:-1])
        q[1:] *= np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)[..., None]
    return q


def _build_motion(joints: list[_Joint], values: np.ndarray, frame_time: float, scale: float | None, name: str,
                  source: str, fold_root: bool) -> Motion:
    T = values.shape[0]
    positions, rot = _tracks(joints, values)
    root_pos = positions[0] if positions[0] is not None else np.tile(joints[0].offset, (T, 1))

    # Fold the root into its single child when that child carries the translation (Bandai Namco's joint_Root).
    keep = list(range(len(joints)))
    children = [k for k, j in enumerate(joints) if j.parent == 0]
    if fold_root and len(children) == 1 and not joints[children[0]].end_site and positions[children[0]] is not None:
        c = children[0]
        child_pos = positions[c]
        block = values[:, joints[0].first_column:joints[0].first_column + len(joints[0].channels)]
        root_static = bool(np.all(np.abs(block - block[:1]) <= 1e-6 * np.maximum(1.0, np.abs(block[:1]))))
        child_moves = bool(np.any(np.abs(child_pos - child_pos[:1]) > 1e-6 * np.maximum(1.0, np.abs(child_pos[:1]))))
        if root_static or child_moves:
            # World transform of the child: [R_r | p_r] · [R_c | p_c] = [R_r R_c | p_r + R_r p_c], exact per frame.
            root_pos = root_pos + Rotation.from_quat(rot[:, 0], scalar_first=True).apply(child_pos)
            rot[:, c] = _quat_mul(rot[:, 0], rot[:, c])
            keep = keep[1:]

    new_index = {old: new for new, old in enumerate(keep)}
    names, parents, offsets, ends = [], [], [], []
    varying: list[tuple[str, float]] = []
    for new, old in enumerate(keep):
        j = joints[old]
        pos = positions[old]
        names.append(j.name)
        parents.append(-1 if new == 0 else new_index[j.parent])
        if new == 0:
            # The file's OFFSET for a kept root; a folded root's offset is its frame-0 position (Bandai's Hips
            # OFFSET is not where the clip puts them).
            offsets.append(j.offset if old == 0 else root_pos[0])
        elif pos is not None:  # non-root position channels replace the OFFSET: keep their mean
            mean = pos.mean(axis=0)
            offsets.append(mean)
            varying.append((j.name, float(np.abs(pos - mean).max())))
        else:
            offsets.append(j.offset)
        ends.append(j.end_site)
    root_positions = root_pos
    rot = np.ascontiguousarray(rot[:, keep])
    offsets_arr = np.asarray(offsets, dtype=np.float64)
    try:
        skeleton = Skeleton(names, parents, offsets_arr, end_sites=ends)
    except ValueError as exc:  # pragma: no cover - the parser already guarantees order and unique names
        raise BVHError(f"{source}: {exc}") from None

    if scale is None:
        size = _figure_size(skeleton, rot, root_positions)
        scale, label = unit_scale_for_size(size)
        if label.startswith("unknown"):
            warnings.warn(f"{source}: cannot tell the units from the figure's size ({size:.4g} file units); "
                          "reading them as metres (pass units= to choose)", stacklevel=3)
    moving = [(n, s * scale) for n, s in varying if s * scale > 1e-3]
    if moving:
        listed = ", ".join(f"{n} ({s * 100:.1f} cm)" for n, s in moving[:6])
        warnings.warn(f"{source}: position channels of non-root joints vary over the clip and are replaced by their "
                      f"mean offset: {listed}{' ...' if len(moving) > 6 else ''}", stacklevel=3)

    return Motion(skeleton.scaled(scale), _make_continuous(rot), root_positions * scale, _round_fps(frame_time), name)


def read_bvh(path: str | os.PathLike, units: str | float = "auto", fold_root: bool = True) -> Motion:
    """Read a BVH file into a :class:`Motion` in metres (see the module docstring for units and dialects).

    Raises:
        BVHError: the file is missing, unreadable or malformed (the message names the file and line).
    """
    path = Path(path)
    try:
        check_input_file(path, what="motion file", max_bytes=MAX_MOTION_FILE_BYTES)
        raw = path.read_bytes()
    except UnsafeInputError as exc:
        raise BVHError(str(exc)) from None
    except OSError as exc:
        raise BVHError(f"cannot read {path.name!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_bvh_text(text, units=units, name=path.stem, source=path.name, fold_root=fold_root)


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------

def _fmt(x: float) -> str:
    s = "%.9g" % x
    return "0" if s == "-0" else s


def write_bvh(motion: Motion, path: str | os.PathLike, rotation_order: str = "ZYX", scale: float = 1.0) -> None:
    """Write a motion as BVH, atomically (a temporary file in the same folder, then ``os.replace``).

    The root gets ``Xposition Yposition Zposition`` plus three rotation channels, every other joint three rotation
    channels in ``rotation_order`` (intrinsic, as listed: "ZYX" writes ``Zrotation Yrotation Xrotation``), and
    joints flagged as end sites (leaves) become ``End Site`` blocks. Rest orientations (``rest_rotations``) are
    baked into the rotations, since BVH rests are world-aligned; world joint positions are unchanged.

    Args:
        motion: the motion (metres).
        path: the output file.
        rotation_order: a permutation of "XYZ".
        scale: lengths in the file are metres × ``scale`` (1 → metres, 100 → centimetres).
    """
    order = rotation_order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"rotation_order must be a permutation of 'XYZ', got {rotation_order!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    sk = motion.skeleton
    J, T = sk.num_joints, motion.num_frames
    if T == 0:
        raise ValueError("cannot write a motion with no frames")
    for name in sk.names:
        if not name.strip() or any(c in name for c in "{}\n\r"):
            raise ValueError(f"joint name {name!r} cannot be written to BVH (empty, or holds braces or line breaks)")
    children = [sk.children(j) for j in range(J)]
    as_end_site = [j > 0 and sk.end_sites[j] and not children[j] for j in range(J)]

    # Columns follow the depth-first order of the written hierarchy (not always the skeleton's index order).
    written: list[int] = []
    stack = [0]
    while stack:
        j = stack.pop()
        if not as_end_site[j]:
            written.append(j)
        stack.extend(reversed(children[j]))

    # Full local rotations (rest orientation baked in) → Euler angles.
    local = _quat_mul(np.broadcast_to(sk.rest_rotations[written], (T, len(written), 4)), motion.rotations[:, written])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal lock: the angles still give the right rotation
        euler = Rotation.from_quat(local.reshape(-1, 4), scalar_first=True).as_euler(order, degrees=True)
    data = np.concatenate([motion.root_positions * scale, euler.reshape(T, -1)], axis=1)
    if not np.isfinite(data).all():
        raise ValueError("the motion has non-finite rotations or root positions")

    rot_channels = " ".join(f"{a}rotation" for a in order)
    out: list[str] = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        off_text = " ".join(_fmt(v) for v in sk.offsets[j] * scale)
        if as_end_site[j]:
            out.extend([f"{pad}End Site", f"{pad}{{", f"{pad}\tOFFSET {off_text}", f"{pad}}}"])
            return
        if j == 0:
            out.extend(["ROOT " + sk.names[0], "{", f"\tOFFSET {off_text}",
                        f"\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}"])
        else:
            out.extend([f"{pad}JOINT {sk.names[j]}", f"{pad}{{", f"{pad}\tOFFSET {off_text}",
                        f"{pad}\tCHANNELS 3 {rot_channels}"])
        for c in children[j]:
            emit(c, depth + 1)
        out.append(f"{pad}}}")

    emit(0, 0)
    out += ["MOTION", f"Frames: {T}", f"Frame Time: {_fmt(1.0 / motion.fps)}"]
    buf = io.StringIO()
    buf.write("\n".join(out) + "\n")
    np.savetxt(buf, data, fmt="%.9g", delimiter=" ")

    with atomic_file(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8", newline="\n")
