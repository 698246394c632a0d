"""What a file named like a checkpoint holds, told from its first bytes before anything is unpickled, so that a
refusal says what went wrong (a download that returned a login page, a clone without ``git lfs pull``, notes
saved under the wrong name) instead of an unpickling error that blames "pickled objects or code".

``torch.save`` writes a zip archive (``PK\\x03\\x04``, the default since PyTorch 1.6) or, in its legacy format, a
binary pickle (first byte ``\\x80``, the PROTO opcode); every checkpoint rs3d reads with ``torch.load`` starts
with one of the two. Git LFS pointers are small text files that start with
``version https://git-lfs.github.com/spec/v1`` (the Git LFS specification, docs/spec.md of git-lfs).
"""
from __future__ import annotations

from rs3d.utils import paths

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
#: Bytes read to tell the kind: enough for an HTML page's doctype and an LFS pointer's whole first line.
HEAD_BYTES = 1024


def read_head(path: str, size: int = HEAD_BYTES) -> bytes:
    with paths.open_file(path, "rb") as f:
        return f.read(size)


def describe_head(head: bytes) -> str:
    """What a file starting with ``head`` is, in words, when it is not a torch checkpoint; "" when it may be one."""
    if head.startswith((ZIP_MAGIC, PICKLE_PROTO)):
        return ""
    if not head:
        return "an empty file, not a checkpoint"
    if head.startswith(LFS_POINTER):
        return "a Git LFS pointer (run git lfs pull), not a checkpoint"
    text = _as_text(head)
    if text is not None:
        start = text.lstrip().lower()
        if start.startswith(("<!doctype html", "<html")) or "<html" in start[:HEAD_BYTES]:
            return "an HTML page, not a checkpoint (a download that needed a login or a link to a web page?)"
        return "not a checkpoint (text)"
    if not head.strip(b"\x00"):
        return "not a checkpoint (zero bytes only: damaged)"
    return "not a checkpoint (binary data of no known format)"


def _as_text(head: bytes) -> str | None:
    """``head`` as text when it is UTF-8 without control characters (a cut-off last character allowed)."""
    for cut in range(4):
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if all(ch.isprintable() or ch in "\t\r\n\f" for ch in text):
            return text
        return None
    return None


def is_foreign(description: str) -> bool:
    """Whether a :func:`describe_head` answer names a file a user put there (text, a web page, an LFS pointer)
    rather than a checkpoint damaged on disk (empty, zeroed, unknown bytes)."""
    return description.startswith(("a Git LFS pointer", "an HTML page", "not a checkpoint (text)"))


def describe_file(path: str) -> str:
    """:func:`describe_head` of a file's first bytes ("" when it may be a checkpoint, or cannot be read here)."""
    try:
        return describe_head(read_head(path))
    except OSError:
        return ""  # the loader reports unreadable files itself
