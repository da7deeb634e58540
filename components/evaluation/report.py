"""Stage `report`: one static, self-contained HTML page comparing every model (images embedded as
data URIs, training curves as PNG with labelled axes), so it can be opened anywhere and logged to MLflow."""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path

FIGURES = ("samples", "translations", "class_grid", "interpolation", "code_traversal", "nearest_neighbours", "reconstructions", "traversal")
CAPTIONS = {"class_grid": "class grid: one row per class, the same noise in every row",
            "code_traversal": "code traversal: rows = categorical code, columns = a continuous code from -1 to 1",
            "translations": "rows of 8: source, translation, cycled back; a2b blocks first, then b2a"}
PER_MODEL_PROTOCOL = ("primary_metric", "likelihood", "likelihood_metrics", "conditioning", "codes", "codebook",
                      "translation")
CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1300px;color:#222}
.wrap{overflow-x:auto;max-width:100%}tr.ref td{background:#eef3fb;font-style:italic}.proto{color:#555;font-size:.8rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
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
LEARNED = {"precision": 0.5, "recall": 0.5, "cond_accuracy": 0.9, "code_accuracy": 0.6, "code_sample_accuracy": 0.6,
           "recon_accuracy": 0.9, "translation_target_rate": 0.7}


def shortfall(m: dict) -> str | None:
    """Why a model's metrics say it did not learn at this budget (None when it meets every target it has)."""
    skip = set() if m.get("sample_targets", True) else {"precision", "recall", "classes_covered"}
    misses = [f"{k} {m[k]:.2f} < {t}" for k, t in LEARNED.items()
              if k not in skip and isinstance(m.get(k), (int, float)) and m[k] < t]
    covered, total = m.get("classes_covered"), m.get("classes_total")
    if "classes_covered" not in skip and isinstance(covered, int) and isinstance(total, int) and covered < total:
        misses.append(f"classes covered {covered} of {total}")  # a class under a quarter of its data share
    size, perplexity = m.get("codebook_size"), m.get("codebook_perplexity")
    if isinstance(size, int) and isinstance(perplexity, (int, float)) and perplexity < size / 2:
        misses.append(f"codebook perplexity {perplexity:.1f} < {size / 2:g} (half the codebook)")
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


def _table(group: str, rows: dict[str, dict], real: dict | None) -> str:
    """One table of the report: the metrics of `group` (registry), a row per model that has any of them, the
    real-data reference first; a cell is marked best only among rows of the same protocol (N, k, feature
    network, split) and of models that learned, and a row at another protocol says which N it used."""
    from components.evaluation.registry import METRICS, label, protocol_key

    keys = [k for k, m in METRICS.items() if m.group == group and any(r.get(k) is not None for r in rows.values())]
    if not keys:
        return ""
    shown = {m: r for m, r in rows.items() if any(r.get(k) is not None for k in keys)}
    ref = real if real is not None and group == "samples" else None
    head = "".join(f"<th>{html.escape(label(k))}</th>" for k in keys)
    body = []
    floor_row = next((r for r in rows.values() if "regressor_floor_pos_x" in r), None) if group == "translation" else None
    if floor_row is not None:  # the factor regressor read on real test images: what no translation can beat
        cells = "".join(f"<td>{_fmt(floor_row.get('regressor_floor_' + k.split('_', 2)[2]) if k.startswith('factor_') else None)}</td>"
                        for k in keys)
        body.append(f'<tr class="ref"><td class="name">real data (the factor regressor on real test images)</td>{cells}</tr>')
    if ref is not None:
        cells = "".join(f"<td>{_fmt(ref.get(k))}</td>" for k in keys)
        n = ref.get("protocol", {}).get("n_real")
        body.append(f'<tr class="ref"><td class="name">real data ({html.escape(str(ref.get("protocol", {}).get("reference_split", "val")))} vs test, N = {n})</td>{cells}</tr>')
    # ranked: models that learned; in the sample table, only models whose samples are what they are judged on
    # (the VQ-VAE's decode uniformly drawn codes: shown, never marked best; vqvae_prior is its sampler)
    ranked = {m: r for m, r in shown.items() if not shortfall(r) and (group != "samples" or r.get("sample_targets", True))}
    for m, r in shown.items():
        cells = []
        for k in keys:
            peers = [x.get(k) for x in ranked.values() if protocol_key(k, x) == protocol_key(k, r)]
            best = _best(peers, METRICS[k].higher) if m in ranked else None
            v = r.get(k)
            cls = ' class="best"' if best is not None and v == best else ""
            cells.append(f"<td{cls}>{_fmt(v)}</td>")
        notes = []
        miss = shortfall(r)
        if miss:
            notes.append(f'<span class="miss">did not learn at this budget: {html.escape(miss)}</span>')
        if group == "samples" and not r.get("sample_targets", True):
            notes.append('<span class="proto">not a sampler (decodes uniformly drawn codes): not ranked</span>')
        n = r.get("protocol", {}).get("n_fake")
        if group == "samples" and ref is not None and n is not None and n != ref.get("protocol", {}).get("n_real"):
            floor = (real or {}).get("by_n", {}).get(str(n), {})
            notes.append(f'<span class="proto">N = {n}: ranked only against rows at N = {n}'
                         + (f"; real data at this N: FID {_fmt(floor.get('fid'))}, precision {_fmt(floor.get('precision'))}, "
                            f"recall {_fmt(floor.get('recall'))}" if floor else "") + "</span>")
        flag = "<br>" + "<br>".join(notes) if notes else ""
        body.append(f'<tr><td class="name"><a href="#{m}">{m}</a>{flag}</td>{"".join(cells)}</tr>')
    from components.evaluation.registry import GROUPS

    return (f'<h3>{GROUPS[group]}</h3><div class="wrap"><table><tr><th>model</th>{head}</tr>{"".join(body)}</table></div>')


def build_report(root: Path, models: list[str], featurize: dict | None) -> str:
    metrics = {m: json.loads((root / f"metrics/{m}.json").read_text()) for m in models}
    real_file = root / "metrics/real.json"
    real = json.loads(real_file.read_text()) if real_file.is_file() else None
    from components.evaluation.registry import GROUPS

    tables = "".join(_table(g, metrics, real) for g in GROUPS)
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
        notes.update({"per-class KID": metrics[m].get("kid_per_class"), "code -> class": metrics[m].get("code_to_class"),
                      "code-factor |r|": metrics[m].get("code_factor_corr"),
                      "samples' code-factor |r|": metrics[m].get("code_sample_factor_corr")})
        lines = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(_plain(v))}</li>" for k, v in notes.items() if v)
        sections.append(f'<h2 id="{m}">{m}</h2><ul>{lines}</ul><div class="figs">{"".join(figs)}</div>')
    feat = ""
    if featurize:
        feat = (f"<p>Feature network: held-out accuracy <b>{featurize['test_accuracy']:.4f}</b> "
                f"(gate {featurize['min_accuracy']}), weights sha256 <code>{featurize['feature_net_sha256'][:16]}</code></p>")
    protos = {m: {k: v for k, v in metrics[m].get("protocol", {}).items() if k not in PER_MODEL_PROTOCOL}
              for m in models}
    fields = sorted({k for p in protos.values() for k in p}, key=lambda k: list(proto).index(k) if k in proto else 99)
    shared = {k: protos[models[0]].get(k) for k in fields
              if models and all(str(p.get(k)) == str(protos[models[0]].get(k)) for p in protos.values())}
    proto_rows = "".join(f"<tr><th>{html.escape(k)}</th><td class='name'>{html.escape(_plain(v))}</td></tr>"
                         for k, v in shared.items())
    differ = [k for k in fields if k not in shared]
    per_model = ""
    if differ:
        rows = "".join(f"<tr><td class='name'>{m}</td>" + "".join(f"<td>{html.escape(_plain(protos[m].get(k, '')))}</td>"
                                                               for k in differ) + "</tr>" for m in models)
        per_model = ("<p>Fields that differ between models, per model:</p><div class='wrap'><table><tr><th>model</th>"
                     + "".join(f"<th>{html.escape(k)}</th>" for k in differ) + f"</tr>{rows}</table></div>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>GenZoo report</title><style>{CSS}</style></head>
<body><h1>GenZoo report</h1>
<p>{html.escape(proto.get("dataset", ""))}, {len(models)} models, generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.
Best value per column in green, among rows of the same protocol (N, k, feature network, split) of models that
learned; the real-data row is the floor a model can reach at that N. Sample metrics are computed in the
pipeline's own feature space.</p>{feat}
{tables}
{"".join(sections)}
<h2>Protocol</h2><p>Shared by every model (each model's own protocol lines are in its section).</p><div class="wrap"><table>{proto_rows}</table></div>{per_model}</body></html>
"""
