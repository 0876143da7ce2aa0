"""The public surface: every name documented, every native name in the stubs."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import tradelab
from tradelab import _native

STUBS = Path(tradelab.__file__).with_name("_native.pyi")


def test_every_public_name_has_a_docstring():
    undocumented = []
    for name in tradelab.__all__:
        obj = getattr(tradelab, name)
        if name == "__version__" or isinstance(obj, (str, tuple)):
            continue
        if not inspect.getdoc(obj):
            undocumented.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (callable(member) or isinstance(member, property)):
                    continue
                if not inspect.getdoc(member):
                    undocumented.append(f"{name}.{attr}")
    assert not undocumented, undocumented


def test_every_native_name_is_in_the_stubs_and_documented():
    tree = ast.parse(STUBS.read_text())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    stubbed |= {t.target.id for t in tree.body if isinstance(t, ast.AnnAssign)}
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert public - stubbed == set(), "names the stubs lack"
    assert stubbed - public - {"__version__"} == set(), "stubs for names that do not exist"
    for name in public:
        assert inspect.getdoc(getattr(_native, name)), name


def test_the_package_is_typed():
    assert Path(tradelab.__file__).with_name("py.typed").exists()
