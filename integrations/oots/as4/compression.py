"""AS4 payload compression (§1.4.3.1 of eDelivery AS4 1.15): gzip, and capped decompression.

The sender gzips a payload *before* signing and encrypting it and marks its ``PartInfo`` with
``CompressionType=application/gzip`` (``MimeType`` keeps the original type). The receiver
inflates it after decrypting: in steps of at most the remaining allowance, so a small
"decompression bomb" stops at ``max_bytes`` instead of filling memory. A failure is
``As4DecompressionFailed`` (``EBMS:0303``).
"""

from __future__ import annotations

import gzip
import zlib
from typing import Final

from integrations.oots.as4.errors import As4DecompressionFailed

COMPRESSION_TYPE: Final = "CompressionType"
GZIP: Final = "application/gzip"
#: Room for the evidence PDFs OOTS carries; the receiver may configure less.
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
_STEP: Final = 1024 * 1024


def compress(content: bytes) -> bytes:
    """``content`` gzipped (level 6: the default; a fixed mtime keeps the output repeatable)."""
    return gzip.compress(content, compresslevel=6, mtime=0)


def decompress(content: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """``content`` inflated; ``As4DecompressionFailed`` when not gzip or over ``max_bytes``."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    size = 0
    pending = content
    try:
        while True:
            chunk = inflater.decompress(pending, min(_STEP, max_bytes - size + 1))
            size += len(chunk)
            if size > max_bytes:
                raise As4DecompressionFailed(f"the payload inflates to more than {max_bytes} bytes")
            out.append(chunk)
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not chunk):
                break
    except zlib.error as exc:
        raise As4DecompressionFailed(f"not gzip data: {exc}") from exc
    if not inflater.eof:
        raise As4DecompressionFailed("the gzip stream is truncated")
    if inflater.unused_data.strip(b"\0"):
        # A second gzip member is legal gzip but no AS4 sender writes one; refused, not ignored.
        raise As4DecompressionFailed("data follows the end of the gzip stream")
    return b"".join(out)
