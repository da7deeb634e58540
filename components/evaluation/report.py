"""Stage `report`: one static, self-contained HTML page comparing every model (images embedded as
data URIs, training curves as PNG with labelled axes), so it can be opened anywhere and logged to MLflow."""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path

# column -> (label, True if higher is better)
COLUMNS = {
    "fid": ("FID (features)", False),
    "kid": ("KID", False),
    "precision": ("precision", True),
    "recall": ("recall", True),
    "classes_covered": ("classes covered", True),
    "class_kl": ("class KL", False),
    "memorization_fraction": ("memorized", False),
    "fid_inception": ("FID (Inception)", False),
    "test_elbo_nats": ("-ELBO (nats)", False),
    "test_iwae_nats": ("-IWAE (nats)", False),
    "test_iwae_bits_per_dim": ("-IWAE (bits/dim)", False),
    "test_elbo_given_y_nats": ("-ELBO given y (nats)", False),
    "test_iwae_given_y_nats": ("-IWAE given y (nats)", False),
    "test_nll_nats": ("NLL (nats)", False),
    "test_nll_bits_per_dim": ("NLL (bits/dim)", False),
    "test_nll_given_y_nats": ("NLL given y (nats)", False),
    "test_nll_given_y_bits_per_dim": ("NLL given y (bits/dim)", False),
    "cond_accuracy": ("conditional accuracy", True),
    "fid_per_class_mean": ("per-class FID (mean)", False),
    "code_accuracy": ("InfoGAN code accuracy", True),
    "code_factor_corr_best_mean": ("code-factor |r| (mean best)", True),
    "codebook_perplexity": ("codebook perplexity", True),
    "codebook_dead_codes": ("dead codes", False),
    "translation_fid": ("translation FID (mean a2b, b2a)", False),
    "translation_target_rate": ("translated into target class", True),
    "factor_error_pos_x": ("pos_x error (grid steps)", False),
    "factor_error_pos_y": ("pos_y error (grid steps)", False),
    "factor_error_scale": ("scale error (grid steps)", False),
    "factor_error_orientation_deg": ("orientation error (deg, mod 90)", False),
    "cycle_l1": ("cycle L1", False),
}
FIGURES = ("samples", "translations", "class_grid", "interpolation", "code_traversal", "nearest_neighbours", "reconstructions", "traversal")
CAPTIONS = {"class_grid": "class grid: one row per class, the same noise in every row",
            "code_traversal": "code traversal: rows = categorical code, columns = a continuous code from -1 to 1",
            "translations": "rows of 8: source, translation, cycled back; a2b blocks first, then b2a"}
PER_MODEL_PROTOCOL = ("primary_metric", "likelihood", "likelihood_metrics", "conditioning", "codes", "codebook",
                      "translation")
CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3}td.best{background:#d9f2d9;font-weight:bold}td.name{text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:1rem}.figs figure{margin:0}.figs img{max-width:380px;image-rendering:pixelated}
figcaption{font-size:.85rem;color:#555}code{font-size:.85rem}.miss{color:#b00;font-size:.8rem}
.figs img.curves{max-width:1150px;image-rendering:auto}"""


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _fmt(v) -> str:
    if v is None:
        return "&mdash;"
    return f"{v:d}" if isinstance(v, int) else f"{v:.4g}"


def _curves(csv_path: Path, model: str) -> str:
    """The training curves of `model` (components.evaluation.curves) as an embedded PNG."""
    import tempfile

    from components.evaluation.curves import draw

    with tempfile.TemporaryDirectory() as d:
        png = draw(csv_path, Path(d) / "curves.png", f"{model}: quality and losses over training")
        return f'<img src="{_img(png)}" alt="{model} training curves" class="curves">' if png else ""


# The targets a sampling family must meet to count as learned at this budget (issue "Learning made visible")
LEARNED = {"precision": 0.5, "recall": 0.5, "cond_accuracy": 0.9, "translation_target_rate": 0.7}


def shortfall(m: dict) -> str | None:
    """Why a model's metrics say it did not learn at this budget (None when it meets every target it has)."""
    misses = [f"{k} {m[k]:.2f} < {t}" for k, t in LEARNED.items() if isinstance(m.get(k), (int, float)) and m[k] < t]
    return "; ".join(misses) or None


def _plain(v) -> str:
    """A protocol value or nested metric as short text (numbers to 3 significant digits)."""
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_plain(x)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _best(values: list, higher: bool):
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(finite) < 2:
        return None
    return max(finite) if higher else min(finite)


def build_report(root: Path, models: list[str], featurize: dict | None) -> str:
    metrics = {m: json.loads((root / f"metrics/{m}.json").read_text()) for m in models}
    cols = [c for c in COLUMNS if any(metrics[m].get(c) is not None for m in models)]
    head = "".join(f"<th>{COLUMNS[c][0]}</th>" for c in cols)
    body = []
    for m in models:
        cells = []
        for c in cols:
            best = _best([metrics[x].get(c) for x in models if not shortfall(metrics[x])], COLUMNS[c][1])  # not ranked: missed
            v = metrics[m].get(c)
            cls = ' class="best"' if best is not None and v == best else ""
            cells.append(f"<td{cls}>{_fmt(v)}</td>")
        miss = shortfall(metrics[m])
        flag = f'<br><span class="miss">did not learn at this budget: {html.escape(miss)}</span>' if miss else ""
        body.append(f'<tr><td class="name"><a href="#{m}">{m}</a>{flag}</td>{"".join(cells)}</tr>')
    proto = next(iter(metrics.values()))["protocol"] if metrics else {}
    sections = []
    for m in models:
        figs = []
        for f in FIGURES:
            p = root / f"evaluation/{m}/{f}.png"
            if p.is_file():
                caption = CAPTIONS.get(f, f.replace("_", " "))
                figs.append(f'<figure><img src="{_img(p)}" alt="{m} {f}"><figcaption>{caption}</figcaption></figure>')
        curves = root / f"plots/train/{m}.csv"
        if curves.is_file():
            figs.append(f"<figure>{_curves(curves, m)}<figcaption>per-epoch quality on a fixed validation sample "
                        "(dashed: real data at the same N) and the training losses</figcaption></figure>")
        notes = {k: metrics[m].get(k, metrics[m]["protocol"].get(k)) for k in PER_MODEL_PROTOCOL}
        notes.update({"per-class FID": metrics[m].get("fid_per_class"), "code -> class": metrics[m].get("code_to_class"),
                      "code-factor |r|": metrics[m].get("code_factor_corr")})
        lines = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(_plain(v))}</li>" for k, v in notes.items() if v)
        sections.append(f'<h2 id="{m}">{m}</h2><ul>{lines}</ul><div class="figs">{"".join(figs)}</div>')
    feat = ""
    if featurize:
        feat = (f"<p>Feature network: held-out accuracy <b>{featurize['test_accuracy']:.4f}</b> "
                f"(gate {featurize['min_accuracy']}), weights sha256 <code>{featurize['feature_net_sha256'][:16]}</code></p>")
    proto_rows = "".join(f"<tr><th>{html.escape(k)}</th><td class='name'>{html.escape(str(v))}</td></tr>"
                         for k, v in proto.items() if k not in PER_MODEL_PROTOCOL)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>GenZoo report</title><style>{CSS}</style></head>
<body><h1>GenZoo report</h1>
<p>{html.escape(proto.get("dataset", ""))}, {len(models)} models, generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.
Best value per column in green; sample metrics are computed in the pipeline's own feature space.</p>{feat}
<table><tr><th>model</th>{head}</tr>{"".join(body)}</table>
{"".join(sections)}
<h2>Protocol</h2><p>Shared by every model (each model's own protocol lines are in its section).</p><table>{proto_rows}</table></body></html>
"""
