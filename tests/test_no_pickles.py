"""No pickles anywhere in the pipeline code: loading a data or model file never runs code."""
import ast
from pathlib import Path

import pytest

STAGES = Path(__file__).resolve().parents[1] / "stages"
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def pickle_uses(source: str) -> list[str]:
    """Lines of `source` that import a pickler, pass allow_pickle=True or load YAML unsafely."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        if any(name.split(".")[0] in PICKLING_MODULES for name in names):
            found.append(f"line {node.lineno}: imports {', '.join(names)}")
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "allow_pickle" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                found.append(f"line {node.lineno}: allow_pickle={ast.unparse(keyword.value)}")
        function = ast.unparse(node.func)
        if function.endswith(("yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all")):
            found.append(f"line {node.lineno}: {function}(")
        if function.endswith("yaml.load"):
            loader = next((ast.unparse(k.value) for k in node.keywords if k.arg == "Loader"),
                          ast.unparse(node.args[1]) if len(node.args) > 1 else "")
            if loader.split(".")[-1] not in SAFE_YAML_LOADERS:
                found.append(f"line {node.lineno}: yaml.load( without a safe Loader")
    return found


@pytest.mark.parametrize("source", [
    "import pickle", "from joblib import dump", "import numpy as np\nnp.load('x', allow_pickle=True)",
    "yaml.load(f)", "yaml.load(f, Loader=yaml.Loader)", "yaml.unsafe_load(f)",
])
def test_the_scanner_finds_each_kind_of_pickle_use(source):
    assert pickle_uses(source)


def test_the_scanner_accepts_the_safe_forms():
    assert pickle_uses("np.load(p, allow_pickle=False)\nyaml.safe_load(f)\n"
                       "yaml.load(f, Loader=yaml.SafeLoader)\n# import pickle") == []


def test_no_stage_module_uses_pickles():
    sources = sorted(STAGES.glob("*.py"))
    assert sources
    found = {path.name: uses for path in sources if (uses := pickle_uses(path.read_text(encoding="utf-8")))}
    assert found == {}
