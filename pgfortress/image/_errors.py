"""The image builder's error, in pgfortress's exception tree."""

from __future__ import annotations

from ..errors import PgFortressError

__all__ = ["ImageError"]


class ImageError(PgFortressError):
    """An image could not be built, exported or verified; nothing was published."""
