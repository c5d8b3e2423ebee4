import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import tempfile  # noqa: E402

# A fresh cache per test session: sample pools and converted models never leak between runs.
os.environ["GOODHART_CACHE"] = tempfile.mkdtemp(prefix="goodhart-test-cache-")
