"""Training curves as a picture: the quality a family is judged on over the images it has seen, beside the
real-data floor at the same N, and its losses; labelled axes and units (the report embeds it)."""

from __future__ import annotations

import csv
from pathlib import Path

# quality key -> (panel, y-axis label, line label); keys sharing a panel share its axes
QUALITY = {
    "q_fid": ("fid", "FID, feature space (log scale; lower is better)", "FID"),
    "q_precision": ("pr", "precision / recall (higher is better)", "precision"),
    "q_recall": ("pr", "precision / recall (higher is better)", "recall"),
    "q_cond_accuracy": ("acc", "accuracy (higher is better)", "conditional accuracy"),
    "q_code_accuracy": ("acc", "accuracy (higher is better)", "code -> shape accuracy (Q on real images)"),
    "q_code_sample_accuracy": ("acc", "accuracy (higher is better)", "code -> shape accuracy (G's samples)"),
    "q_code_factor_corr": ("acc", "accuracy (higher is better)", "best continuous code |r| with a factor"),
    "q_code_sample_factor_corr": ("acc", "accuracy (higher is better)", "the same on G's samples (bench)"),
    "q_target_rate": ("acc", "share (higher is better)", "target-class rate"),
    "q_cycle_l1": ("cycle", "cycle L1 per pixel (lower is better)", "cycle L1"),
    "q_translation_fid": ("fid", "FID, feature space (log scale; lower is better)", "translation FID"),
}
BOUNDS = {"val_neg_elbo": "-ELBO", "val_neg_elbo_given_y": "-ELBO given y", "val_nll": "NLL", "val_nll_given_y": "NLL given y"}
NOT_LOSSES = {"epoch", "step", "epoch_time_s", "images_per_s", "images_seen", "validate_time_s"}


def read_history(csv_path: Path) -> list[dict[str, float]]:
    rows = []
    for r in csv.DictReader(Path(csv_path).open()):
        rows.append({k: float(v) for k, v in r.items() if v not in ("", None)})
    return rows


def panels(rows: list[dict[str, float]]) -> dict[str, dict]:
    """{panel: {"ylabel", "lines": {label: (xs, ys)}, "floors": {label: y}}} from a training history."""
    out: dict[str, dict] = {}
    for key, (panel, ylabel, label) in {**QUALITY, **{k: ("bound", "validation bound (nats per image, lower is "
                                                         "better)", v) for k, v in BOUNDS.items()}}.items():
        pts = [(r.get("images_seen", r["epoch"]), r[key]) for r in rows if key in r]
        if not pts:
            continue
        p = out.setdefault(panel, {"ylabel": ylabel, "lines": {}, "floors": {}})
        p["lines"][label] = ([x for x, _ in pts], [y for _, y in pts])
        floor_key = "q_floor_" + key[2:] if key.startswith("q_") else None  # a validation bound has no floor
        floor = [r[floor_key] for r in rows if floor_key in r]
        if floor:
            p["floors"][f"real data ({label})"] = floor[-1]
    losses = sorted({k for r in rows for k in r} - NOT_LOSSES - set(QUALITY) - set(BOUNDS)
                    - {k for r in rows for k in r if k.startswith("q_")})
    if losses:
        out["losses"] = {"ylabel": "training loss (batch mean per epoch)", "floors": {},
                         "lines": {k: ([r.get("images_seen", r["epoch"]) for r in rows if k in r],
                                       [r[k] for r in rows if k in r]) for k in losses[:6]}}
    return out


def draw(csv_path: Path, out_png: Path, title: str, marks: dict[str, float] | None = None) -> Path | None:
    """The curves of one training run as a PNG (quality panels first, then losses); None without rows.
    `marks`: {label: images seen} drawn as dotted vertical lines (e.g. budgets of 1x, 2x, 4x)."""
    rows = read_history(csv_path)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = panels(rows)
    fig, axes = plt.subplots(1, len(ps), figsize=(3.6 * len(ps), 2.9), squeeze=False)
    for ax, (name, p) in zip(axes[0], ps.items(), strict=True):
        for i, (label, (xs, ys)) in enumerate(p["lines"].items()):
            ax.plot([x / 1000 for x in xs], ys, marker="o", ms=3, color=f"C{i}", label=label)
        for i, (label, y) in enumerate(p["floors"].items()):
            ax.axhline(y, ls="--", lw=1, color=f"C{i}", label=label)
        for label, x in (marks or {}).items():
            ax.axvline(x / 1000, ls=":", lw=1, color="grey")
            ax.text(x / 1000, 1, label, transform=ax.get_xaxis_transform(), fontsize=7, ha="center", va="bottom")
        if name in ("fid", "bound") and all(y > 0 for _, ys in p["lines"].values() for y in ys):
            ax.set_yscale("log")  # FID falls over orders of magnitude; a log axis keeps the late epochs readable
        ax.set_xlabel("images seen (thousands)")
        ax.set_ylabel(p["ylabel"], fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png
