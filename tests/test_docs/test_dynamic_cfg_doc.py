# Copyright (c) varedd_mm contributors. All rights reserved.
"""docs/dynamic_cfg.md lists exactly the ``dynamic_cfg`` keys the code
accepts, with the code's defaults, so the reference cannot drift."""
import ast
import os.path as osp
import re

import pytest

from varedd_mm.models.backbones.dynamic_backbones import PLACEMENT_DEFAULTS
from varedd_mm.models.backbones.seg_resnet import SEG_PLACEMENT_DEFAULTS
from varedd_mm.models.dynamic_placement import (DynamicBackboneMixin,
                                                split_dynamic_cfg)
from varedd_mm.models.necks.vared2_tpn import TPN_PLACEMENT_DEFAULTS
from varedd_mm.ops import config as dcfg

DOC = osp.join(osp.dirname(__file__), '..', '..', 'docs', 'dynamic_cfg.md')

# heading of the doc section -> the defaults the code uses
SECTIONS = {
    'Conv-level keys': dcfg.DYNAMIC_CFG_DEFAULTS,
    "Gate keys (`dynamic_cfg['gate']`)": dcfg.GATE_CFG_DEFAULTS,
    'Placement keys: video backbones': PLACEMENT_DEFAULTS,
    'Placement keys: image backbones': SEG_PLACEMENT_DEFAULTS,
    'Placement keys: TPN neck': TPN_PLACEMENT_DEFAULTS,
}


def parse_doc(text):
    """``{heading: (intro text, [row dicts])}`` of every ``##`` section."""
    sections = {}
    for block in re.split(r'^## ', text, flags=re.M)[1:]:
        heading, _, body = block.partition('\n')
        rows, header, intro = [], None, []
        for line in body.splitlines():
            if not line.startswith('|'):
                if header is None:
                    intro.append(line)
                continue
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if header is None:
                header = cells
            elif not set(''.join(cells)) <= set('-: '):
                rows.append(dict(zip(header, cells)))
        sections[heading.strip()] = ('\n'.join(intro), rows)
    return sections


def code_span(cell):
    """The text of the first backtick span of a table cell."""
    m = re.search(r'`([^`]*)`', cell)
    assert m, f'no `code` in {cell!r}'
    return m.group(1)


def literal(cell):
    """The Python literal in the first backtick span of a table cell."""
    return ast.literal_eval(code_span(cell))


@pytest.fixture(scope='module')
def doc():
    with open(DOC) as f:
        return parse_doc(f.read())


def test_every_section_is_known(doc):
    tables = {h for h, (_, rows) in doc.items() if rows}
    assert tables == set(SECTIONS), (
        'docs/dynamic_cfg.md has key tables the test does not check, or '
        'lacks some: update both')


@pytest.mark.parametrize('heading', list(SECTIONS))
def test_section_lists_the_code_keys_and_defaults(doc, heading):
    rows = doc[heading][1]
    documented = {code_span(r['key']): literal(r['default']) for r in rows}
    code = SECTIONS[heading]
    assert len(rows) == len(documented), 'a key is listed twice'
    missing = sorted(set(code) - set(documented))
    unknown = sorted(set(documented) - set(code))
    assert not missing, f'{heading}: keys in the code, not in the doc'
    assert not unknown, f'{heading}: keys in the doc, not in the code'
    for key, default in documented.items():
        assert default == code[key], (heading, key, default, code[key])


def test_documented_choices_are_the_allowed_ones(doc):
    rows = {code_span(r['key']): r for r in doc['Conv-level keys'][1]}
    for key, allowed in (('search_space', dcfg.ALLOWED_SEARCH_SPACES),
                         ('temporal_op', dcfg.ALLOWED_TEMPORAL_OPS),
                         ('channel_op', dcfg.ALLOWED_CHANNEL_OPS)):
        spans = re.findall(r'`([^`]*)`', rows[key]['allowed'])
        assert tuple(ast.literal_eval(s) for s in spans) == allowed, key


def test_documented_keys_are_accepted_and_others_refused(doc):
    """What the tables list is what the parsers take (behaviour, not only
    names): each documented key passes, an undocumented one fails."""
    for r in doc['Conv-level keys'][1]:
        key = code_span(r['key'])
        dcfg.parse_dynamic_cfg({key: literal(r['default'])}, has_time=True)
    for r in doc["Gate keys (`dynamic_cfg['gate']`)"][1]:
        key = code_span(r['key'])
        dcfg.parse_dynamic_cfg(
            dict(gate={key: literal(r['default'])}), has_time=True)
    with pytest.raises(ValueError, match='unknown key'):
        dcfg.parse_dynamic_cfg(dict(gate=dict(hidden=8)), has_time=True)
    for heading in list(SECTIONS)[2:]:
        for r in doc[heading][1]:
            key, default = code_span(r['key']), literal(r['default'])
            placement, rest = split_dynamic_cfg({key: default}, 'doc',
                                                SECTIONS[heading])
            assert placement[key] == default and rest == {}
        with pytest.raises(ValueError, match='unknown key'):
            split_dynamic_cfg(dict(not_a_key=True), 'doc', SECTIONS[heading])


def test_every_dynamic_backbone_and_neck_is_named_once(doc):
    """Each registered dynamic backbone / neck appears in the intro of the
    placement section whose defaults it uses."""
    from mmaction.registry import MODELS as ACTION
    from mmseg.registry import MODELS as SEG

    classes = {
        name: cls
        for registry in (ACTION, SEG)
        for name, cls in registry.module_dict.items()
        if name.startswith('VARED2') and (isinstance(cls, type) and issubclass(
            cls, DynamicBackboneMixin) or name == 'VARED2TPN')
    }
    assert {'VARED2ResNet2Plus1d', 'VARED2ResNetV1c',
            'VARED2TPN'} <= set(classes)
    for name, cls in classes.items():
        holders = [h for h in list(SECTIONS)[2:] if f'`{name}`' in doc[h][0]]
        assert len(holders) == 1, (name, holders)
        expected = (
            TPN_PLACEMENT_DEFAULTS
            if name == 'VARED2TPN' else cls._placement_defaults)
        assert SECTIONS[holders[0]] == expected, name
