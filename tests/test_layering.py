"""The package's folders are the stages of the data flow, and imports only go down the stack:

    errors.py, quiet.py, memory.py  <  prep/  <  train/  <  evaluate/, serve/  <  cli/  <  tools/

evaluate/ and serve/ stand side by side: neither imports the other. Preparation knows no TensorFlow:
prep/records.py (TFRecord is TensorFlow's own format) is the one exception, and the rest of prep/ imports
it only inside the function that writes --format tfrecord, so g_mask.py and process.py start without
TensorFlow. Every import counts, those inside functions included, but for the package's lazy way to the
Python API. Read from the source with `ast`; the last test also imports the package, in a fresh
interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "lipseg_tf"
# Folder (or module) of lipseg_tf -> rank; a module may import from a lower rank and from its own folder.
RANKS = {"errors": 0, "quiet": 0, "memory": 0, "prep": 1, "train": 2, "evaluate": 3, "serve": 3, "cli": 4, "tools": 5}
TENSORFLOW = ("tensorflow", "keras")
TF_IN_PREP = {"lipseg_tf.prep.records"}
# The package's __init__ reaches the Python API on first use of lipseg_tf.Segmenter (a module __getattr__):
# the one import that goes up, inside a function, so importing lipseg_tf loads nothing.
LAZY_API = ("lipseg_tf", "lipseg_tf.serve.api")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def folder_of(module: str) -> str | None:
    """The stage a lipseg_tf module belongs to ('prep', ...), 'errors' for the base, None when none."""
    parts = module.split(".")
    if len(parts) == 1:
        return "errors"          # the package itself: a docstring and a version
    return parts[1] if parts[1] in RANKS else None


def imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, inside a function) for every import statement of a file; `from X import Y`
    counts as importing X.Y where that is a module of lipseg_tf."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((node.lineno, full if full in MODULES else base, in_function))
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return list(dict.fromkeys(found))


def test_every_module_sits_in_a_stage_folder():
    assert {folder_of(m) for m in MODULES} >= set(RANKS), "a stage folder is missing"
    unplaced = [m for m in MODULES if folder_of(m) is None]
    assert not unplaced, f"modules outside the stage folders {sorted(RANKS)}: {unplaced}"
    for folder in RANKS:
        if not (PACKAGE / f"{folder}.py").is_file():   # a folder without __init__.py would be left out of the wheel
            assert (PACKAGE / folder / "__init__.py").is_file(), folder


def test_imports_only_go_down_the_stack():
    wrong = []
    for module, path in MODULES.items():
        here = folder_of(module)
        for line, name, in_function in imports(path):
            if name.split(".")[0] != "lipseg_tf" or ((module, name) == LAZY_API and in_function):
                continue
            there = folder_of(name)
            if here is None or there is None:
                outside = module if here is None else name
                wrong.append(f"{path.relative_to(REPO)}:{line}: {name} ({outside} is outside the stage folders)")
            elif there != here and RANKS[there] >= RANKS[here]:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {here}/ imports {name} from {there}/")
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(wrong)


def test_preparation_imports_no_tensorflow():
    prep = {m: p for m, p in MODULES.items() if folder_of(m) == "prep"}
    assert len(prep) >= 5
    wrong = []
    for module, path in prep.items():
        for line, name, in_function in imports(path):
            where = f"{path.relative_to(REPO)}:{line}: {name}"
            if name.split(".")[0] in TENSORFLOW and module not in TF_IN_PREP:
                wrong.append(where)
            if name in TF_IN_PREP and not in_function:
                wrong.append(where + " at the top of the module (import it where it is used)")
    assert not wrong, "TensorFlow in preparation:\n" + "\n".join(wrong)


def test_importing_the_package_and_the_preparation_scripts_loads_no_tensorflow():
    """What the ast tests promise, seen in a fresh interpreter: importing lipseg_tf, every prep module
    but records, and the mains of g_mask.py and process.py prints nothing and loads no TensorFlow."""
    names = ["lipseg_tf", "lipseg_tf.cli.g_mask", "lipseg_tf.cli.process"] + sorted(
        m for m in MODULES if folder_of(m) == "prep" and m not in TF_IN_PREP)
    script = ("import importlib, json, sys\n"
              f"for name in {names!r}:\n"
              "    importlib.import_module(name)\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout) == []


def test_no_test_file_imports_another():
    """Shared test code lives in helpers.py and conftest.py's fixtures."""
    wrong = []
    for path in sorted((REPO / "tests").glob("*.py")):
        for line, name, _ in imports(path):
            if name.startswith("test_") or name == "conftest":
                wrong.append(f"{path.name}:{line}: {name}")
    assert not wrong, "\n".join(wrong)
