"""The package's single logger.

Modules log through ``logger`` with lazy ``%`` arguments. Nothing secret is
ever passed to it: secrets are wrapped in :class:`pgfortress.secrets.Secret`,
whose printed forms are masked.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("pgfortress")
