"""The front panel's layout holds: every shown word in text.py, menus as data, small modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import pca.controller.panel as panel_pkg
from pca.controller.panel import FrontPanel, text
from pca.controller.panel.menus import MENUS, Entry, MenuSpec

PACKAGE = Path(panel_pkg.__file__).parent
MACHINE_WORD = re.compile(r"^[a-z0-9_]*$")  # event types, states, commands, field names
LOGGED_NOT_SHOWN = {"rejected on the keypad"}  # a reason the pump logs, never displayed


def strings_outside_text(path: Path) -> list[tuple[int, str]]:
    """String constants with words in them that are not docstrings, raised errors, reprs,
    exports or machine words: those are what a screen would show."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.Raise) or (  # errors for developers; reprs; exports
                isinstance(node, ast.FunctionDef) and node.name == "__repr__") or (
                isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)):
            skip.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in skip and re.search(r"[A-Za-z]", node.value)
                and not MACHINE_WORD.match(node.value) and node.value not in LOGGED_NOT_SHOWN):
            found.append((node.lineno, node.value))
    return found


def test_every_word_the_panel_shows_is_in_the_text_module() -> None:
    modules = sorted(p for p in PACKAGE.glob("*.py") if p.name != "text.py")
    assert len(modules) >= 10
    stray = {p.name: strings_outside_text(p) for p in modules}
    assert {name: found for name, found in stray.items() if found} == {}


def test_the_text_check_sees_a_stray_word(tmp_path: Path) -> None:
    sample = tmp_path / "flow.py"
    sample.write_text('"""Doc."""\ndef f():\n    """Doc."""\n    say("Dose given")\n'
                      '    submit("new_patient")\n    raise ValueError("not shown")\n')
    assert strings_outside_text(sample) == [(4, "Dose given")]


def test_every_module_opens_with_a_one_line_docstring_and_stays_small() -> None:
    for path in PACKAGE.glob("*.py"):
        source = path.read_text()
        doc = ast.get_docstring(ast.parse(source), clean=False)
        assert doc, path.name
        first = source.splitlines()[0]
        assert first.startswith('"""') and (first.endswith('"""') or
                                            source.splitlines()[1] in ("", '"""')), path.name
        assert len(source.splitlines()) <= 400, path.name


def test_every_menu_label_is_in_the_text_module() -> None:
    for spec in MENUS.values():
        for entry in spec.items:
            assert entry.label in text.LABEL
            assert not entry.alt_label or entry.alt_label in text.LABEL


class FakeHost:
    session_role = "clinician"


def test_a_menu_naming_an_action_no_flow_has_is_refused_at_start_up() -> None:
    bad = {"clinician": MenuSpec("MENU", (Entry("1", "start", "launch_rockets"),))}
    with pytest.raises(ValueError, match="launch_rockets"):
        FrontPanel(FakeHost(), menus=bad)  # type: ignore[arg-type]
    bad = {"clinician": MenuSpec("MENU", (Entry("1", "start", "start_stop", alt_label="stop",
                                                alt_when="full_moon"),))}
    with pytest.raises(ValueError, match="full_moon"):
        FrontPanel(FakeHost(), menus=bad)  # type: ignore[arg-type]
