"""Model cards (Mitchell et al., as Vertex AI and SageMaker keep them): structured fields plus markdown,
versioned with the model. Every set of a version's card is a new revision; nothing is overwritten."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import Field, ValidationError
from sqlalchemy.exc import IntegrityError

from strato.errors import InvalidArgument, NotFound
from strato.specs.base import StrictModel
from strato.specs.loader import describe_validation_error
from strato.store.metadata import MetadataStore
from strato.store.metadata.tables import model_cards


class ModelCard(StrictModel):
    intended_use: str = Field(min_length=1, description="what the model is for, and for whom")
    training_data: str = Field(min_length=1, description="the data it learned from")
    metrics: dict[str, float] = Field(default_factory=dict, description="evaluation results")
    limitations: str = Field(min_length=1, description="where it fails or must not be used")
    owner: str = Field(min_length=1, description="who answers for it")
    ethical_considerations: str | None = None
    markdown: str = Field("", description="the card as prose; rendered from the fields when empty")

    @classmethod
    def parse(cls, data: Any, where: str = "model card") -> ModelCard:
        if not isinstance(data, dict):
            raise InvalidArgument(f"{where}: a model card must be a mapping of fields (intended_use, owner, ...)")
        try:
            card = cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidArgument(describe_validation_error(exc, where, cls)) from None
        return card if card.markdown.strip() else card.model_copy(update={"markdown": card.render()})

    def render(self) -> str:
        """The card as markdown, from its fields."""
        parts = [
            "## Intended use",
            self.intended_use,
            "## Training data",
            self.training_data,
        ]
        if self.metrics:
            rows = "\n".join(f"| {name} | {value:g} |" for name, value in sorted(self.metrics.items()))
            parts += ["## Metrics", "| metric | value |\n| --- | --- |\n" + rows]
        parts += ["## Limitations", self.limitations]
        if self.ethical_considerations:
            parts += ["## Ethical considerations", self.ethical_considerations]
        parts += ["## Owner", self.owner]
        return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class CardRevision:
    model: str
    version: str
    revision: int
    card: ModelCard
    author: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "revision": self.revision,
            "card": self.card.model_dump(mode="json"),
            "markdown": self.card.markdown,
            "author": self.author,
            "at": self.at,
        }


def _revision(row: sa.Row[Any]) -> CardRevision:
    card = ModelCard.model_validate({**row.card, "markdown": row.markdown})
    return CardRevision(row.model, row.version, int(row.revision), card, row.author, row.at)


class CardStore:
    def __init__(self, store: MetadataStore):
        self.store = store

    def add(self, model: str, version: str, card: ModelCard, author: str) -> CardRevision:
        """Store ``card`` as the version's next revision (1 for the first)."""
        fields = card.model_dump(mode="json", exclude={"markdown"})
        for _ in range(5):  # two writers racing for a revision number: the loser takes the next one
            try:
                with self.store.writing() as conn:
                    latest = conn.execute(
                        sa.select(sa.func.max(model_cards.c.revision)).where(
                            model_cards.c.model == model, model_cards.c.version == version
                        )
                    ).scalar()
                    revision = int(latest or 0) + 1
                    at = self.store.clock()
                    conn.execute(
                        model_cards.insert().values(
                            model=model,
                            version=version,
                            revision=revision,
                            card=fields,
                            markdown=card.markdown,
                            author=author,
                            at=at,
                        )
                    )
                return CardRevision(model, version, revision, card, author, at)
            except IntegrityError:
                continue
        raise InvalidArgument(f"could not store the model card of {model} version {version}: too many concurrent edits")

    def get(self, model: str, version: str, revision: int | None = None) -> CardRevision:
        query = sa.select(model_cards).where(model_cards.c.model == model, model_cards.c.version == version)
        if revision is None:
            query = query.order_by(model_cards.c.revision.desc()).limit(1)
        else:
            query = query.where(model_cards.c.revision == revision)
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        if row is not None:
            return _revision(row)
        history = self.history(model, version)
        if not history:
            raise NotFound(
                f"model {model!r} version {version} has no model card; set one with "
                f"`strato models card set {model} {version} -f card.yaml`"
            )
        raise NotFound(
            f"model {model!r} version {version} has no card revision {revision} (revisions 1 to {history[-1].revision})"
        )

    def history(self, model: str, version: str) -> list[CardRevision]:
        query = (
            sa.select(model_cards)
            .where(model_cards.c.model == model, model_cards.c.version == version)
            .order_by(model_cards.c.revision)
        )
        with self.store.reading() as conn:
            return [_revision(row) for row in conn.execute(query)]

    def exists(self, model: str, version: str) -> bool:
        query = sa.select(model_cards.c.id).where(model_cards.c.model == model, model_cards.c.version == version)
        with self.store.reading() as conn:
            return conn.execute(query.limit(1)).first() is not None
