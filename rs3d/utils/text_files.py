"""Reading a user's text file (config, CSV, class names) as UTF-8, the one encoding rs3d reads: a leading byte
order mark is dropped (spreadsheet programs and Windows editors write one, and it would otherwise become part of
the first path or key), and any other encoding is refused with the line of its first bad byte."""
from __future__ import annotations

from rs3d.utils import paths
from rs3d.utils.errors import UserInputError

UTF8_BOM = b"\xef\xbb\xbf"


def decode_utf8(data: bytes, path: str, error: type[UserInputError] = UserInputError) -> str:
    """``data`` (the bytes of ``path``) as text, BOM dropped; ``error`` names the file and line otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8") from None


def read_utf8(path: str, error: type[UserInputError] = UserInputError, what: str = "the file") -> str:
    """The text of ``path`` (any iopath handler) via :func:`decode_utf8`; an unreadable file is ``error`` too."""
    try:
        with paths.open_file(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    return decode_utf8(data, path, error)
