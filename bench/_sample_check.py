"""What the sample-metric diagnostics in bench/ share: the project's data and feature network, loaded as the evaluate
stage loads them, and one scorer for a set of images (FID, Heusel et al. 2017; improved precision and recall,
Kynkaanniemi et al. 2019; the feature classifier's class per image)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def require_files(flag: str, paths: list[Path | str]) -> None:
    """One line naming every missing file of `flag`, and a non-zero exit."""
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"{flag}: {', '.join(missing)} not found; train them first (dvc repro train@<model>)")


@dataclass
class SampleCheck:
    params: object
    data: Path
    spec: object
    net: object
    sha: str

    @classmethod
    def load(cls) -> SampleCheck:
        from components.config import load_config
        from components.data import load_spec
        from components.evaluation.features import load_feature_net

        params = load_config(REPO / "params.yaml")
        data = params.path(params.data.out_dir)
        net, sha, _ = load_feature_net(params.path("features/classifier.pt"))
        return cls(params, data, load_spec(data), net, sha)

    @property
    def k(self) -> int:
        return self.params.evaluate.pr_k

    def split(self, name: str, n: int):
        """The first n images of a split (uint8 (n, C, H, W)) and their labels."""
        from components.data import read_split

        return read_split(self.data, self.spec, name, limit=n)

    def features(self, images):
        from components.evaluation.features import embed

        return embed(self.net, images)

    def score(self, reference, images) -> tuple[float, float, float, object]:
        """FID, precision, recall of `images` against the reference features, and each image's predicted class."""
        from components.evaluation.sample_metrics import fid, precision_recall

        f, pred = self.features(images)
        p, r = precision_recall(reference, f, k=self.k)
        return fid(reference, f), p, r, pred

    def heading(self, n: int) -> str:
        return f"feature network {self.sha[:8]}, N = {n}, k = {self.k}; classes {self.spec.classes}"
