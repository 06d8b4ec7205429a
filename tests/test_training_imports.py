"""training/ must run on a GPU machine that has only torch, transformers, numpy, pyarrow,
sentencepiece and safetensors: no Beam, Prefect, datasets or pydantic."""

import ast
import sys
from pathlib import Path

ALLOWED = {"torch", "transformers", "numpy", "pyarrow", "sentencepiece", "safetensors", "training"}


def test_training_imports_only_what_the_gpu_machine_has():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    found = {}
    for path in sorted((Path(__file__).parent.parent / "training").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib:
                    found.setdefault(top, set()).add(path.name)
    assert set(found) <= ALLOWED, {k: v for k, v in found.items() if k not in ALLOWED}
    assert {"torch", "transformers", "safetensors"} <= set(found)
