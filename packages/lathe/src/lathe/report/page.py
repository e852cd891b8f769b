"""The HTML of ``report.html``. Every chart is followed by its numbers in a table (exact
``repr`` floats), so the page is readable without the picture and checkable by a parser."""

from __future__ import annotations

from html import escape
from typing import Any

from lathe.report.svg import bar_chart, line_chart

# (chart title, [(series name, log key)]): the trainer's log keys (lathe.train.trainer adds tokens/s).
CHARTS = (
    ("Loss", [("loss", "loss"), ("eval_loss", "eval_loss")]),
    ("Learning rate", [("learning_rate", "learning_rate")]),
    ("Gradient norm", [("grad_norm", "grad_norm")]),
    ("Tokens per second", [("tokens_per_second", "tokens_per_second")]),
)
STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}"""


def series_of(log_history: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) of every log line that holds ``key``."""
    return [(float(h.get("step", i)), float(h[key])) for i, h in enumerate(log_history)
            if isinstance(h.get(key), int | float) and not isinstance(h.get(key), bool)]


def _series_table(name: str, points: list[tuple[float, float]]) -> str:
    rows = "".join(f"<tr><td>{int(x) if x.is_integer() else x!r}</td><td>{y!r}</td></tr>" for x, y in points)
    return (f'<details><summary>{escape(name)}: {len(points)} values</summary>'
            f'<table class="series" data-series="{escape(name)}"><tr><th>step</th><th>{escape(name)}</th></tr>{rows}</table></details>')


def _charts(log_history: list[dict[str, Any]]) -> str:
    out = []
    for title, keys in CHARTS:
        series = [(name, series_of(log_history, key)) for name, key in keys]
        series = [(n, p) for n, p in series if p]
        if not series:
            continue
        tables = "".join(_series_table(n, p) for n, p in series)
        out.append(f"<figure><figcaption><b>{escape(title)}</b></figcaption>{line_chart(series)}{tables}</figure>")
    return f'<div class="charts">{"".join(out)}</div>' if out else "<p>The trainer logged no values.</p>"


def _data(report: dict[str, Any] | None) -> str:
    if not report:
        return "<p>No data report (the run was rebuilt from a checkpoint, or prepared by an older lathe).</p>"
    drops = ", ".join(f"{n} {escape(str(reason))}" for reason, n in sorted(report.get("dropped", {}).items())) or "none"
    rows = [
        ("rows read", report.get("rows_in")), ("rows kept for training", report.get("rows_kept")),
        ("rows for eval", report.get("eval_rows")), ("dropped", drops), ("tokens", report.get("tokens")),
        ("trained tokens", report.get("trained_tokens")),
        ("trained share", f"{report.get('trainable_share', 0.0):.1%}"),
        ("EOS / end-of-turn tokens trained", report.get("eos_trained")),
    ]
    if report.get("packing_efficiency") is not None:
        rows.append(("packing", f"{report.get('bins')} bins, efficiency {report['packing_efficiency']:.4f}"))
    table = "".join(f"<tr><th>{escape(k)}</th><td>{v if k == 'dropped' else escape(str(v))}</td></tr>" for k, v in rows)
    histogram = [(str(k), float(v)) for k, v in (report.get("length_histogram") or {}).items()]
    return (f'<table class="data-report">{table}</table>'
            f"<figure><figcaption><b>Row lengths</b></figcaption>{bar_chart(histogram)}</figure>")


def render(record: dict[str, Any], config_text: str | None, title: str = "run") -> str:
    """The whole page: curves, data report, resolved config (already redacted), environment."""
    log_history = record.get("log_history", [])
    final = next((h for h in reversed(log_history) if "train_runtime" in h), {})
    summary = "".join(f"<tr><th>{escape(k)}</th><td>{escape(repr(v))}</td></tr>" for k, v in final.items())
    env = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in record.get("environment", {}).items())
    source = f"<p>Rebuilt from {escape(record['source'])}.</p>" if record.get("source") else ""
    config = f"<pre>{escape(config_text)}</pre>" if config_text else "<p>No lathe_config.yaml in this directory.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lathe report: {escape(title)}</title><style>{STYLE}</style></head>
<body><h1>lathe report: {escape(title)}</h1>{source}
<h2>Training</h2>{_charts(log_history)}
{f'<table class="summary">{summary}</table>' if summary else ''}
<h2>Data</h2>{_data(record.get("data_report"))}
<h2>Config (resolved, secrets redacted)</h2>{config}
<h2>Environment</h2><table class="environment">{env}</table>
</body></html>
"""
