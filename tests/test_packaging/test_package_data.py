# Copyright (c) varedd_mm contributors. All rights reserved.
"""Every file of the package that is not Python (the C++ source of the
rebuild kernel, compiled on first use) is declared as package data, so a
wheel or sdist install carries it."""
import configparser
import fnmatch
import os
import os.path as osp

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def test_non_python_package_files_are_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(ROOT, 'setup.cfg'))
    declared = {
        package: value.split()
        for package, value in cfg['options.package_data'].items()
    }
    files = []
    for dirpath, _, names in os.walk(osp.join(ROOT, 'varedd_mm')):
        for name in names:
            if not name.endswith(('.py', '.pyc')):
                files.append(osp.relpath(osp.join(dirpath, name), ROOT))
    assert 'varedd_mm/ops/csrc/rebuild.cpp' in files
    for path in files:
        covered = any(
            fnmatch.fnmatch(
                osp.relpath(path, package.replace('.', '/')), pattern)
            for package, patterns in declared.items() for pattern in patterns
            if path.startswith(package.replace('.', '/') + '/'))
        assert covered, f'{path} is not in setup.cfg [options.package_data]'
