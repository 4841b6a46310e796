# Copyright (c) varedd_mm contributors. All rights reserved.
"""Every third-party module that the package, the tools or the tests import
is declared in setup.cfg (install_requires, or an extra), so
``pip install -e .`` users do not meet a missing runtime dependency."""
import ast
import configparser
import glob
import os.path as osp
import re
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

# distribution name (normalised) -> the top-level modules it provides, where
# they differ from the name
PROVIDES = {
    'mmaction2': {'mmaction'},
    'mmsegmentation': {'mmseg'},
    'opencv-python': {'cv2'},
    'pillow': {'PIL'},
    'importlib-metadata': {'importlib_metadata'},
    'torch-pruning': {'torch_pruning'},
}
FIRST_PARTY = {'varedd_mm'}
#: the top-level scripts of tools/, which sibling scripts import by name
#: (tools/run_hard_benchmark.py imports run_default)
TOOL_SCRIPTS = {
    osp.splitext(osp.basename(p))[0]
    for p in glob.glob(osp.join(ROOT, 'tools', '*.py'))
}


def normalise(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def declared():
    """``{group: set of top-level modules}`` for install_requires and each
    extra of setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(ROOT, 'setup.cfg'))
    groups = {'install_requires': cfg['options']['install_requires']}
    groups.update(cfg['options.extras_require'])
    result = {}
    for group, text in groups.items():
        modules = set()
        for line in text.splitlines():
            line = line.split('#')[0].strip()
            if not line:
                continue
            dist = normalise(re.split(r'[<>=!~;\[ ]', line, 1)[0])
            modules |= PROVIDES.get(dist, {dist.replace('-', '_')})
        result[group] = modules
    return result


def imported(paths):
    """``{top-level module: first file importing it}`` of absolute imports
    in ``paths``."""
    found = {}
    for path in paths:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split('.')[0], osp.relpath(path, ROOT))
    return found


def third_party(found):
    return {
        m: f
        for m, f in found.items()
        if m not in sys.stdlib_module_names and m not in FIRST_PARTY
        and not (m in TOOL_SCRIPTS and f.startswith('tools'))
    }


def files(*dirs):
    return [
        p for d in dirs
        for p in glob.glob(osp.join(ROOT, d, '**', '*.py'), recursive=True)
    ]


def test_declared_names_are_parsed():
    groups = declared()
    assert {'torch', 'mmaction', 'mmengine', 'tqdm', 'av',
            'cv2'} <= groups['install_requires']
    assert 'mmseg' in groups['seg'] and 'mmdet' in groups['det']


def test_package_and_tools_imports_are_declared():
    """Runtime code: install_requires, plus the codebase extras (mmseg,
    mmdet, torchvision, torch-pruning) whose users are imported only when
    installed."""
    groups = declared()
    allowed = (
        groups['install_requires'] | groups['seg'] | groups['det']
        | groups['pretrained'] | groups['prune'])
    missing = {
        m: f
        for m, f in third_party(imported(files('varedd_mm', 'tools'))).items()
        if m not in allowed
    }
    assert not missing, f'imported but not declared in setup.cfg: {missing}'


def test_codebase_extras_are_only_used_where_guarded():
    """mmseg / mmdet are extras: the package must import without them, so
    only the adapters of those codebases (imported behind a find_spec
    guard) may import them."""
    for path in files('varedd_mm'):
        rel = osp.relpath(path, ROOT)
        used = imported([path])
        for module, folders in (('mmseg', ('segmentors', 'seg_resnet')),
                                ('mmdet', ('detectors', ))):
            if module in used:
                assert any(f in rel for f in folders), (rel, module)


def test_test_imports_are_declared():
    groups = declared()
    allowed = set().union(*groups.values())
    # helper modules next to the tests (tests/test_ops/_fused_helpers.py)
    helpers = {
        osp.splitext(osp.basename(p))[0]
        for p in files('tests') if osp.basename(p).startswith('_')
    }
    assert '_fused_helpers' in helpers
    missing = {
        m: f
        for m, f in third_party(imported(files('tests'))).items()
        if m not in allowed and m not in helpers
    }
    assert not missing, f'tests import undeclared modules: {missing}'


@pytest.mark.parametrize('module', ['tqdm', 'av', 'cv2', 'PIL'])
def test_declared_modules_are_importable_here(module):
    """The mapping from distribution to module names is right (the module
    the declaration stands for exists in this environment)."""
    __import__(module)
