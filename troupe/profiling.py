"""A population's profile: each dimension's target against what was sampled and what was written.

``target`` is the expected count (size x the category's share in the spec), ``sampled`` how many
people the quota sampler gave the category (within one person of the target), ``achieved`` how
many of those people's personas actually hold it (the consistency check passed). The profile
also counts near-duplicates: first drafts that nearly repeated someone and were rewritten, and
near-duplicates still left. A chart of the same numbers is drawn with matplotlib, imported only
when a chart is asked for.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import BaseModel

from .population import PopulationSpec

if TYPE_CHECKING:
    from .factory.generation import GeneratedPersona


class CategoryProfile(BaseModel):
    category: str
    target: float
    sampled: int
    achieved: int


class DimensionProfile(BaseModel):
    name: str
    categories: list[CategoryProfile]

    @property
    def max_deviation(self) -> float:
        """The largest |sampled - target| of the dimension, in people."""
        return max((abs(c.sampled - c.target) for c in self.categories), default=0.0)


class PopulationProfile(BaseModel):
    size: int
    dimensions: list[DimensionProfile]
    rewritten_near_duplicates: int
    near_duplicate_rate: float
    residual_near_duplicates: int
    residual_near_duplicate_rate: float
    rewritten_duplicate_names: int
    renamed_duplicate_names: int = 0  # still repeated after the rounds, so numbered ("John 2")
    duplicate_names: int
    inconsistent: int
    drafts: int

    def summary(self) -> str:
        """One line: size, near-duplicates found and left, names, consistency, drafts."""
        return (
            f"{self.size} people; near-duplicates found {self.rewritten_near_duplicates} "
            f"({self.near_duplicate_rate:.1%}) and rewritten, {self.residual_near_duplicates} left "
            f"({self.residual_near_duplicate_rate:.1%}); repeated names rewritten {self.rewritten_duplicate_names}, "
            f"numbered {self.renamed_duplicate_names}, left {self.duplicate_names}; personas contradicting an attribute: {self.inconsistent}; "
            f"persona drafts: {self.drafts}"
        )

    def tables(self) -> list[Any]:
        """One rich table per dimension: category, target, sampled, achieved."""
        from rich.table import Table

        tables = []
        for dimension in self.dimensions:
            table = Table(title=f"{dimension.name} (max |sampled - target| = {dimension.max_deviation:.2f})")
            for column in ("category", "target", "sampled", "achieved"):
                table.add_column(column, justify="left" if column == "category" else "right")
            for c in dimension.categories:
                table.add_row(c.category, f"{c.target:.1f}", str(c.sampled), str(c.achieved))
            tables.append(table)
        return tables

    def chart(self, path: "str | Path") -> Path:
        """A PNG with one panel per dimension: target, sampled and achieved counts per category."""
        import matplotlib

        matplotlib.use("Agg")  # files only; never opens a window
        import matplotlib.pyplot as plt

        panels = max(1, len(self.dimensions))
        figure, axes = plt.subplots(panels, 1, figsize=(8, 2.2 + 0.45 * sum(len(d.categories) for d in self.dimensions)), squeeze=False)
        for axis, dimension in zip(axes[:, 0], self.dimensions):
            labels = [c.category for c in dimension.categories]
            positions = range(len(labels))
            height = 0.27
            axis.barh([p - height for p in positions], [c.target for c in dimension.categories], height, label="target")
            axis.barh(list(positions), [c.sampled for c in dimension.categories], height, label="sampled")
            axis.barh([p + height for p in positions], [c.achieved for c in dimension.categories], height, label="achieved")
            axis.set_yticks(list(positions), labels)
            axis.invert_yaxis()
            axis.set_title(dimension.name)
            axis.set_xlabel("people")
        axes[0, 0].legend(loc="lower right")
        figure.suptitle(f"Population profile ({self.size} people)")
        figure.tight_layout()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, dpi=110)
        plt.close(figure)
        return target


def profile(rows: Sequence["GeneratedPersona"], spec: PopulationSpec, near_duplicate_threshold: float = 0.8) -> PopulationProfile:
    """The profile of generated people against their spec (rows may come from several shards)."""
    from .factory import diversity

    size = len(rows)
    dimensions = []
    for dim, targets in spec.targets(size).items():
        sampled = Counter(row.categories.get(dim) for row in rows)
        achieved = Counter(row.categories.get(dim) for row in rows if dim not in row.conflicts)
        categories = [CategoryProfile(category=c, target=t, sampled=sampled[c], achieved=achieved[c]) for c, t in targets.items()]
        dimensions.append(DimensionProfile(name=dim, categories=categories))
    ordered = sorted(rows, key=lambda r: r.index)
    residual = diversity.near_duplicates([diversity.persona_text(r.persona) for r in ordered], near_duplicate_threshold) if rows else {}
    rewritten = sum(1 for r in rows if "near-duplicate" in r.flags)
    return PopulationProfile(
        size=size,
        dimensions=dimensions,
        rewritten_near_duplicates=rewritten,
        near_duplicate_rate=rewritten / size if size else 0.0,
        residual_near_duplicates=len(residual),
        residual_near_duplicate_rate=len(residual) / size if size else 0.0,
        rewritten_duplicate_names=sum(1 for r in rows if "duplicate-name" in r.flags),
        renamed_duplicate_names=sum(1 for r in rows if "renamed" in r.flags),
        duplicate_names=len(diversity.duplicate_names([r.name for r in ordered])),
        inconsistent=sum(1 for r in rows if r.conflicts),
        drafts=sum(r.drafts for r in rows),
    )


PROFILE_FILE = "profile.json"


def population_dir(root: "str | Path", run_id: str) -> Path:
    """Where a pipeline run keeps its population's files: the spec it derived, if any, and ``profile.json``."""
    return Path(root) / "populations" / run_id


def read_profile(root: "str | Path", run_id: str) -> PopulationProfile | None:
    """The profile a run saved, or None when the run generated no population."""
    path = population_dir(root, run_id) / PROFILE_FILE
    return PopulationProfile.model_validate_json(path.read_text(encoding="utf-8")) if path.is_file() else None
