"""What the self-contained HTML reports (`evaluate --report`, the sweep's and the backtest's) share: the
page style, the script that marks the page once its plots have decoded, and plots as inline PNGs."""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1d2330; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.sub { color: #5b6475; margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: .8rem; }
.card { border: 1px solid #d8dde6; border-radius: 8px; padding: .7rem .9rem; background: #f8fafc; }
.card .v { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .k { color: #5b6475; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: .9rem; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid #e5e8ee; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
tr.campaign td:first-child { color: #8a1c1c; } tr.benign td:first-child { color: #1c5b8a; }
img { max-width: 100%; height: auto; border: 1px solid #e5e8ee; border-radius: 6px; }
dl { font-size: .9rem; } dt { font-weight: 600; } dd { margin: 0 0 .4rem 1rem; color: #3c4454; }
"""

# Marks the body once every plot has decoded, so a headless browser test can see the images rendered.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});
"""


def png(fig: Figure) -> str:
    """The figure as a data: URL, for an <img> inside the page."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
