"""The entry points: each root script is the same three lines around its main in lipseg_tf/cli/, the console
commands of pyproject.toml call the same mains, and requirements.txt lists pyproject.toml's dependencies."""

from __future__ import annotations

import ast
import importlib

import pytest

from helpers import REPO

tomllib = pytest.importorskip("tomllib")   # Python 3.11 on; the package itself runs on 3.10
SCRIPTS = ("g_mask", "process", "unet", "pix2pix", "print", "predict")


def requirement_lines(path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@pytest.mark.parametrize("script", SCRIPTS)
def test_root_script_only_runs_its_main(script):
    tree = ast.parse((REPO / f"{script}.py").read_text())
    docstring, import_sys, import_main, if_main = tree.body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    assert ast.unparse(import_sys) == "import sys"
    assert ast.unparse(import_main) == f"from lipseg_tf.cli.{script} import main"
    assert ast.unparse(if_main) == "if __name__ == '__main__':\n    sys.exit(main())"


def test_console_commands_call_the_same_mains():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {f"lipseg-{s.replace('_', '-')}": f"lipseg_tf.cli.{s}:main" for s in SCRIPTS}
    for target in project["scripts"].values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name))


def test_requirements_txt_lists_the_package_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert requirement_lines(REPO / "requirements.txt") == project["dependencies"]
    dev = requirement_lines(REPO / "requirements-dev.txt")
    assert dev[0] == "-r requirements.txt" and any(line.startswith("pytest") for line in dev)


def test_the_shipped_models_fit_their_budget_and_each_name_has_its_folder():
    """The models travel inside the package: at most 20 MB in all (the project's budget), and every name
    Segmenter and predict.py --model take (api.PRETRAINED) is a folder with its SavedModel."""
    from lipseg_tf.serve.api import PRETRAINED, PRETRAINED_DIR

    total = sum(path.stat().st_size for path in PRETRAINED_DIR.rglob("*") if path.is_file())
    assert total <= 20_000_000, f"{PRETRAINED_DIR}: {total / 1e6:.1f} MB, over the 20 MB budget"
    for name, folder in PRETRAINED.items():
        assert (PRETRAINED_DIR / folder / "saved_model.pb").is_file(), name
