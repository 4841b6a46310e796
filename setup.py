# Copyright (c) varedd_mm contributors. All rights reserved.
"""Package metadata lives in setup.cfg; this file exists for editable
installs with older setuptools (``pip install -e .``)."""
from setuptools import setup

setup()
