"""Checks every file a user hands us must pass before any parser or importer sees it.

Files users upload are hostile until checked: nothing in them may make us read, write or fetch anything outside
the job. These checks run in the calling process on the file's own bytes, cheaply, and raise
:class:`UnsafeInputError` (an :class:`~core.errors.InputError`) with one line that names the file and what was
expected, never bytes found in it (a file may be a link to a secret, or a secret's bytes in a file's shape):

* :func:`check_input_file`: a regular file, not a symbolic link (a link lets an upload stand for any file on the
  server), not a FIFO or device (``/dev/zero`` never ends), not empty, not over a size limit.
* :func:`check_glb_self_contained`: a binary glTF whose buffers and images all live inside the file. Blender's
  glTF importer opens a ``uri`` relative to the file, ``../`` and absolute paths included, and would put the bytes
  of ``/proc/self/environ`` into a character's vertex colours. Only ``data:`` URIs (bounded) and the GLB's own
  binary chunk are allowed. FBX has no such table to check up front: its texture paths are neutralised inside
  the Blender worker instead (``blender_worker._images_from_the_file_only``).

GLB layout (glTF 2.0 spec, "GLB File Format Specification"): a 12-byte header (magic ``glTF``, version 2, total
length), then chunks of (length, type, data), the first of type ``JSON``, an optional second of type ``BIN``.
All integers are little-endian uint32.
"""
from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

from ..errors import InputError
from ..limits import MAX_HIERARCHY_DEPTH

__all__ = ["UnsafeInputError", "check_input_file", "check_glb_self_contained", "MAX_GLB_JSON_BYTES",
           "MAX_DATA_URI_BYTES"]

MAX_GLB_JSON_BYTES = 64 << 20  # Xbot's JSON chunk is 0.1 MB; a scene description never needs this much
MAX_DATA_URI_BYTES = 64 << 20  # a base64 buffer or image inside the JSON
_GLB_JSON, _GLB_BIN = 0x4E4F534A, 0x004E4942


class UnsafeInputError(InputError):
    """An input file that could make us read outside the job, or is not a plain file (the message says which)."""


def check_input_file(path: str | os.PathLike, *, what: str = "file", max_bytes: int | None = None) -> Path:
    """Refuse anything but a plain, non-empty regular file of at most ``max_bytes``; return the path.

    Args:
        path: the file as given (not resolved: a symbolic link is refused, not followed).
        what: how the message names it ("video", "character file").
        max_bytes: size limit, or None for none.

    Raises:
        UnsafeInputError: missing, a symbolic link, not a regular file, empty, or too large.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafeInputError(f"no such file: {path.name}") from None
    except OSError as exc:
        raise UnsafeInputError(f"cannot read {what} {path.name!r}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeInputError(f"{path.name}: the {what} is a symbolic link; give the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeInputError(f"{path.name}: the {what} is not a regular file (a folder, device or pipe)")
    if st.st_size == 0:
        raise UnsafeInputError(f"{path.name}: the {what} is empty")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UnsafeInputError(f"{path.name}: {st.st_size / 2**20:.0f} MB is more than the {max_bytes >> 20} MB "
                               f"limit for a {what}")
    return path


def check_glb_self_contained(path: str | os.PathLike) -> None:
    """Refuse a GLB that is malformed or refers to anything outside itself.

    Every ``uri`` in the JSON chunk (buffers, images, and any extension's) must be a ``data:`` URI of at most
    :data:`MAX_DATA_URI_BYTES`; a buffer without a ``uri`` must be buffer 0, the GLB's binary chunk.

    Raises:
        UnsafeInputError: an external reference, or a header, chunk or JSON that is not a GLB's.
    """
    path = Path(path)
    name = path.name
    with open(path, "rb") as f:
        header = f.read(20)
        if len(header) < 20:
            raise UnsafeInputError(f"{name}: not a binary glTF (GLB) file: too short")
        magic, version, total, json_len, json_type = struct.unpack("<4sIIII", header)
        size = os.fstat(f.fileno()).st_size
        if magic != b"glTF":
            raise UnsafeInputError(f"{name}: not a binary glTF (GLB) file")
        if version != 2:
            raise UnsafeInputError(f"{name}: GLB version {version} is not supported (glTF 2.0 only)")
        if total > size or json_type != _GLB_JSON or json_len > total - 20:
            raise UnsafeInputError(f"{name}: the GLB's header or first chunk is inconsistent (truncated file?)")
        if json_len > MAX_GLB_JSON_BYTES:
            raise UnsafeInputError(f"{name}: the GLB's JSON chunk is {json_len >> 20} MB, more than the "
                                   f"{MAX_GLB_JSON_BYTES >> 20} MB a scene description may take")
        raw = f.read(json_len)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UnsafeInputError(f"{name}: the GLB's JSON chunk is not valid JSON") from None
    if not isinstance(doc, dict):
        raise UnsafeInputError(f"{name}: the GLB's JSON chunk is not a glTF document")
    for where, uri in _uris(doc):
        if not isinstance(uri, str):
            raise UnsafeInputError(f"{name}: {where} is not a text URI")
        if not uri.startswith("data:"):
            raise UnsafeInputError(f"{name}: {where} refers to a file outside the GLB; only self-contained GLB "
                                   "files are accepted (re-export with everything embedded)")
        if len(uri) > MAX_DATA_URI_BYTES:
            raise UnsafeInputError(f"{name}: {where} is a data URI of {len(uri) >> 20} MB, more than "
                                   f"{MAX_DATA_URI_BYTES >> 20} MB")
    depth = _node_depth(doc.get("nodes", []))
    if depth is None:
        raise UnsafeInputError(f"{name}: the GLB's node hierarchy is malformed (a node is its own ancestor, or a "
                               "child index is out of range)")
    if depth > MAX_HIERARCHY_DEPTH:
        raise UnsafeInputError(f"{name}: the GLB's node hierarchy is {depth} levels deep; at most "
                               f"{MAX_HIERARCHY_DEPTH} are accepted")
    buffers = doc.get("buffers", [])
    if not isinstance(buffers, list):
        raise UnsafeInputError(f"{name}: the GLB's buffer list is malformed")
    for i, buf in enumerate(buffers):
        if not isinstance(buf, dict):
            raise UnsafeInputError(f"{name}: buffer {i} is malformed")
        if "uri" not in buf and i != 0:
            raise UnsafeInputError(f"{name}: buffer {i} has no data (only buffer 0 may be the GLB's binary chunk)")


def _node_depth(nodes) -> int | None:
    """The number of levels of a glTF node forest (1 for lone nodes), or None when it is not a forest."""
    if not isinstance(nodes, list):
        return None
    parent: dict[int, int] = {}
    for i, node in enumerate(nodes):
        children = node.get("children", []) if isinstance(node, dict) else None
        if not isinstance(children, list):
            return None
        for c in children:
            if not isinstance(c, int) or not 0 <= c < len(nodes) or c in parent or c == i:
                return None
            parent[c] = i
    depth = [0] * len(nodes)  # 0: not known yet
    deepest = 0
    for i in range(len(nodes)):
        chain = []
        j = i
        while j is not None and depth[j] == 0:
            chain.append(j)
            if len(chain) > len(nodes):
                return None  # a cycle
            j = parent.get(j)
        base = 0 if j is None else depth[j]
        for k, node in enumerate(reversed(chain), start=1):
            depth[node] = base + k
        deepest = max(deepest, depth[i])
    return deepest


def _uris(doc: dict):
    """Every ``uri`` value in a glTF document, with words that say where it sits ("image 2's URI").

    Iterative: a hostile document may nest thousands of levels deep. The words never quote the file's own keys.
    """
    stack: list = [(doc, "a URI in the JSON")]
    for kind in ("buffers", "images"):
        items = doc.get(kind)
        if isinstance(items, list):
            stack += [(item, f"{kind[:-1]} {i}'s URI") for i, item in enumerate(items)]
    seen: set[int] = set()  # buffers and images are pushed twice: labelled first (popped first), then via doc
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "uri":
                    yield where, value
                elif isinstance(value, (dict, list)):
                    stack.append((value, where))
        elif isinstance(node, list):
            stack.extend((value, where) for value in node if isinstance(value, (dict, list)))
