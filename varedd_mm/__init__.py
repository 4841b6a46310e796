# Copyright (c) varedd_mm contributors. All rights reserved.
"""varedd_mm: VA-RED² for OpenMMLab."""
from .version import __version__  # noqa: F401
