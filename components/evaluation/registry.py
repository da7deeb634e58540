"""The one list of evaluation metrics: name, label, unit, direction, the capability that yields it and the
protocol fields its value depends on. evaluate (what it prints), the report (its tables and ranking), promote
(the direction of a primary metric) and the CLI read it; nothing else keeps a list of metric names.

A value is comparable with another only when the protocol fields named here agree (`protocol_key`): FID is
biased upward roughly as 1/N, and precision/recall move with N and k (Kynkaanniemi et al. 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_PROTOCOL = ("dataset_manifest_sha256", "split", "n_real", "n_fake", "feature_net_sha256")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "" for plain numbers and shares
    higher: bool  # True: higher is better
    group: str  # the report table it belongs to
    capability: str  # what yields it: "samples", "likelihood", "labels", "codes", "codebook", "translation"
    protocol: tuple[str, ...] = SAMPLE_PROTOCOL
    cite: str = ""


def _m(key, label, unit, higher, group, capability, protocol=SAMPLE_PROTOCOL, cite=""):
    return key, Metric(key, label, unit, higher, group, capability, protocol, cite)


_LIK = ("dataset_manifest_sha256", "split", "likelihood_metrics")
_TR = ("dataset_manifest_sha256", "split", "feature_net_sha256", "translation")
METRICS: dict[str, Metric] = dict([
    _m("fid", "FID", "feature space", False, "samples", "samples", cite="Heusel et al. 2017"),
    _m("kid", "KID", "feature space", False, "samples", "samples", cite="Binkowski et al. 2018"),
    _m("precision", "precision", "", True, "samples", "samples", SAMPLE_PROTOCOL + ("precision_recall_k",),
       "Kynkaanniemi et al. 2019"),
    _m("recall", "recall", "", True, "samples", "samples", SAMPLE_PROTOCOL + ("precision_recall_k",),
       "Kynkaanniemi et al. 2019"),
    _m("classes_covered", "classes covered", "", True, "samples", "samples"),
    _m("class_kl", "class KL", "nats", False, "samples", "samples"),
    _m("memorization_fraction", "memorized", "", False, "samples", "samples"),
    _m("fid_inception", "FID (Inception)", "", False, "samples", "samples", cite="Heusel et al. 2017"),
    _m("test_neg_elbo_nats", "-ELBO", "nats", False, "likelihood", "likelihood", _LIK, "Kingma & Welling 2014"),
    _m("test_neg_iwae_nats", "-IWAE", "nats", False, "likelihood", "likelihood", _LIK, "Burda et al. 2016"),
    _m("test_neg_iwae_bits_per_dim", "-IWAE", "bits/dim", False, "likelihood", "likelihood", _LIK, "Burda et al. 2016"),
    _m("test_neg_elbo_given_y_nats", "-ELBO given y", "nats", False, "likelihood", "likelihood", _LIK, "Sohn et al. 2015"),
    _m("test_neg_iwae_given_y_nats", "-IWAE given y", "nats", False, "likelihood", "likelihood", _LIK, "Burda et al. 2016"),
    _m("test_nll_nats", "NLL", "nats", False, "likelihood", "likelihood", _LIK, "van den Oord et al. 2016"),
    _m("test_nll_bits_per_dim", "NLL", "bits/dim", False, "likelihood", "likelihood", _LIK, "van den Oord et al. 2016"),
    _m("test_nll_given_y_nats", "NLL given y", "nats", False, "likelihood", "likelihood", _LIK),
    _m("test_nll_given_y_bits_per_dim", "NLL given y", "bits/dim", False, "likelihood", "likelihood", _LIK),
    _m("cond_accuracy", "conditional accuracy", "", True, "inputs", "labels", cite="Odena et al. 2017"),
    _m("kid_per_class_mean", "per-class KID (mean)", "feature space", False, "inputs", "labels"),
    _m("code_accuracy", "code -> shape accuracy", "", True, "inputs", "codes", cite="Chen et al. 2016"),
    _m("code_sample_accuracy", "samples per code value -> shape", "", True, "inputs", "codes", cite="Chen et al. 2016"),
    _m("code_factor_corr_best_mean", "code-factor |r| (mean best)", "", True, "inputs", "codes"),
    _m("code_factor_corr_best", "code-factor |r| (best code)", "", True, "inputs", "codes"),
    _m("code_factor_corr_untrained", "the same, untrained (chance)", "", True, "inputs", "codes"),
    _m("code_sample_factor_corr_best", "samples: code-factor |r| (best code)", "", True, "inputs", "codes"),
    _m("code_sample_factor_corr_untrained", "samples: the same, untrained (chance)", "", True, "inputs", "codes"),
    _m("codebook_perplexity", "codebook perplexity", "codes", True, "inputs", "codebook", cite="van den Oord et al. 2017"),
    _m("codebook_dead_codes", "dead codes", "codes", False, "inputs", "codebook"),
    _m("recon_accuracy", "classifier accuracy on reconstructions", "", True, "inputs", "codebook"),
    _m("translation_fid", "translation FID (mean a2b, b2a)", "feature space", False, "translation", "translation", _TR),
    _m("translation_target_rate", "translated into target class", "", True, "translation", "translation", _TR),
    _m("factor_error_pos_x", "pos_x error", "grid steps", False, "translation", "translation", _TR),
    _m("factor_error_pos_y", "pos_y error", "grid steps", False, "translation", "translation", _TR),
    _m("factor_error_scale", "scale error", "grid steps", False, "translation", "translation", _TR),
    _m("factor_error_orientation_deg", "orientation error", "deg, mod 90", False, "translation", "translation", _TR),
    _m("factor_spread_pos_x", "pos_x error less the shift", "grid steps", False, "translation", "translation", _TR),
    _m("factor_spread_pos_y", "pos_y error less the shift", "grid steps", False, "translation", "translation", _TR),
    _m("factor_spread_scale", "scale error less the shift", "grid steps", False, "translation", "translation", _TR),
    _m("factor_spread_orientation_deg", "orientation error less the shift", "deg, mod 90", False, "translation",
       "translation", _TR),
    _m("cycle_l1", "cycle L1", "per pixel", False, "translation", "translation", _TR, "Zhu et al. 2017"),
])
GROUPS = {"samples": "Sample quality (same N, same feature space)", "likelihood": "Likelihood on the test split",
          "inputs": "Inputs obeyed: labels, codes, codebook", "translation": "Translation (CycleGAN)"}


def label(key: str) -> str:
    m = METRICS[key]
    return f"{m.label} ({m.unit})" if m.unit else m.label


def higher_is_better(key: str) -> bool:
    """Direction of a metric; unknown keys (older names, say) count as lower-is-better like the bounds."""
    return METRICS[key].higher if key in METRICS else False


def protocol_key(key: str, metrics: dict) -> tuple:
    """The protocol values metric `key` of one row depends on: rows compare on `key` only when these agree."""
    proto = {**metrics.get("protocol", {}), **{k: metrics[k] for k in ("translation",) if k in metrics}}
    return tuple(str(proto.get(f)) for f in METRICS[key].protocol)
