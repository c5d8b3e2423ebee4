"""The flat public API: every name imports, and `import goodhart` loads no model library."""

import subprocess
import sys

import goodhart


def test_all_names_resolve():
    for name in goodhart.__all__:
        assert getattr(goodhart, name) is not None, name


def test_import_is_light():
    code = "import sys, goodhart; goodhart.kl_bound(4); print('transformers' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
