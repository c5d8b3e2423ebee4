import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

# A fresh cache per test session: sample pools and converted models never leak between runs. It holds
# converted models (~0.5 GB), so it goes when the session ends: left behind, each run used to fill /tmp.
os.environ["GOODHART_CACHE"] = tempfile.mkdtemp(prefix="goodhart-test-cache-")
atexit.register(shutil.rmtree, os.environ["GOODHART_CACHE"], ignore_errors=True)
