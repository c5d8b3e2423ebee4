"""Writing figures and the one style sheet every HTML report uses."""

import base64
import io
from pathlib import Path

from goodhart.runs import atomic_write_bytes

STYLE = """<style>body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}img{max-width:100%}pre{background:#f7f7f7;padding:.6rem;
font-size:.8rem;overflow:auto}</style>"""


def save_figure(run_path: Path, name: str, fig) -> bytes:
    """Write plots/<name>.png and plots/<name>.svg under run_path (atomically); returns the PNG bytes."""
    out = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=130)
        out[fmt] = buf.getvalue()
        atomic_write_bytes(Path(run_path) / "plots" / f"{name}.{fmt}", out[fmt])
    return out["png"]


def img_tag(png: bytes, alt: str) -> str:
    """An <img> with the PNG embedded, so report.html stands alone."""
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="{alt}">'
