# Copyright (c) varedd_mm contributors. All rights reserved.
"""What the user-facing docs point at exists: every command's script and
the options given to it, every config path, every relative link and
image. Read statically (no tool is run), so a renamed option, a moved
config or a deleted figure fails here instead of in a user's shell."""
import ast
import glob
import os.path as osp
import re
from functools import lru_cache

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

DOC_PATTERNS = ('docs/*.md', 'configs/**/README.md', 'tools/**/README.md')
DOCS = sorted({'README.md'} | {
    osp.relpath(path, ROOT)
    for pattern in DOC_PATTERNS
    for path in glob.glob(osp.join(ROOT, pattern), recursive=True)
})

# a script of the repo, then the rest of its command line
COMMAND = re.compile(
    r'(?<![\w/.])((?:tools|varedd_mm)/[\w/]+\.(?:py|sh))([^\n`]*)')
CONFIG = re.compile(r'(?<![\w/.])(configs/[\w./-]+\.py)')
LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')
OPTION = re.compile(r'(?<!\S)(--[a-z][\w-]*)')


def read(doc):
    with open(osp.join(ROOT, doc)) as f:
        return f.read()


def commands(text):
    """``(script, arguments)`` of every command in ``text``, shell line
    continuations joined; the arguments stop at a pipe, a ``;``, ``&``,
    a closing bracket or a comment."""
    joined = re.sub(r'\\\n\s*', ' ', text)
    for m in COMMAND.finditer(joined):
        yield m.group(1), re.split(r'[;|&)]|\s#', m.group(2))[0]


@lru_cache(maxsize=None)
def string_constants(script):
    """The option strings a Python script can accept: its ``'--...'``
    string constants (the names given to ``add_argument``)."""
    with open(osp.join(ROOT, script)) as f:
        tree = ast.parse(f.read())
    return frozenset(
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and node.value.startswith('--'))


def problems(text, base):
    """What ``text`` (a doc in the directory ``base``) points at that does
    not exist: scripts, their options, configs, relative links."""
    wrong = []
    for script, arguments in commands(text):
        if not osp.isfile(osp.join(ROOT, script)):
            wrong.append(f'{script}: no such script')
        elif script.endswith('.py'):
            known = string_constants(script)
            wrong += [
                f'{script} {option}: no such option'
                for option in OPTION.findall(arguments) if option not in known
            ]
    wrong += [
        f'{config}: no such config' for config in CONFIG.findall(text)
        if not osp.isfile(osp.join(ROOT, config))
    ]
    wrong += [
        f'{target}: broken link' for target in LINK.findall(text)
        if not re.match(r'[a-z]+:', target)
        and not osp.exists(osp.normpath(osp.join(base, target)))
    ]
    return sorted(set(wrong))


def test_the_docs_are_found():
    assert {'README.md', 'docs/engine.md', 'docs/policy.md'} <= set(DOCS)
    # the README names dozens of commands
    assert sum(1 for _ in commands(read('README.md'))) > 50


@pytest.mark.parametrize('doc', DOCS)
def test_what_the_doc_points_at_exists(doc):
    wrong = problems(read(doc), osp.dirname(osp.join(ROOT, doc)))
    assert not wrong, f'{doc}: ' + '; '.join(wrong)


def test_the_check_catches_each_kind():
    """A made-up option of a real script (also on a continued line), a
    script, a config and a link that do not exist are each reported;
    what exists and what is in a comment is not."""
    text = ('Run `tools/analysis/get_flops.py CFG --shape 1 --no-such` and\n'
            '```bash\ntools/analysis/gone.py --out x\n'
            'tools/analysis/benchmark.py CFG --batch-sizes 8 \\\n'
            '    --nor-this  # --comment-only\n```\n'
            'with configs/recognition/vared2/none.py or '
            'configs/_base_/default_runtime.py, see [a](docs/engine.md), '
            '[b](docs/none.md#x), [c](https://example.org/none).')
    assert problems(text, ROOT) == [
        'configs/recognition/vared2/none.py: no such config',
        'docs/none.md: broken link',
        'tools/analysis/benchmark.py --nor-this: no such option',
        'tools/analysis/get_flops.py --no-such: no such option',
        'tools/analysis/gone.py: no such script',
    ]
