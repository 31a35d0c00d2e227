"""Where a project's run writes its artifacts: `artifacts/<project>/...`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARTIFACTS = REPO_ROOT / "artifacts"


@dataclass(frozen=True)
class ArtifactPaths:
    """The files of one project's run, all below `root` (git-ignored), and the serving repository."""

    root: Path
    serving_root: Path = DEFAULT_ARTIFACTS / "serving"  # TF Serving's <model>/<version>/ folders, models.config

    @classmethod
    def for_project(cls, project: str, output_dir: Path | None = None) -> ArtifactPaths:
        """`output_dir` if given (its serving repository in `output_dir/serving`), else `artifacts/<project>/`."""
        root = Path(output_dir) if output_dir else DEFAULT_ARTIFACTS / project
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, root / "serving" if output_dir else DEFAULT_ARTIFACTS / "serving")

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def best_checkpoint(self) -> Path:
        return self.root / "checkpoints" / "best.keras"

    @property
    def backup_dir(self) -> Path:
        return self.root / "checkpoints" / "backup"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def history_csv(self) -> Path:
        return self.root / "history.csv"

    @property
    def train_summary(self) -> Path:
        return self.root / "train.json"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def export_dir(self) -> Path:
        """TF Lite, TF.js and ONNX files (the SavedModel goes to `serving_root`)."""
        return self.root / "export"

    @property
    def parity_json(self) -> Path:
        return self.root / "parity.json"

    @property
    def parity_md(self) -> Path:
        return self.root / "parity.md"

    @property
    def tuning(self) -> Path:
        """`tune`: keras-tuner's state (`search/`), results.json/.md, trials.png, best.json."""
        return self.root / "tuning"

    @property
    def optimize(self) -> Path:
        """`optimize`: the pruned and quantization-aware TF Lite models, optimize.json/.md."""
        return self.root / "optimize"

    @property
    def plots(self) -> Path:
        path = self.root / "plots"
        path.mkdir(parents=True, exist_ok=True)
        return path
