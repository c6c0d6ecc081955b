"""Model cards: the structured fields, their validation, markdown rendered when none is given, and
revisions in the metadata store."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.errors import InvalidArgument, NotFound
from strato.registry.cards import CardStore, ModelCard
from strato.store.metadata import MetadataStore

FIELDS = {
    "intended_use": "classify iris flowers",
    "training_data": "sklearn's iris, 150 rows",
    "metrics": {"accuracy": 0.97},
    "limitations": "three species only",
    "owner": "ml-team",
}


def test_markdown_is_rendered_from_the_fields_when_empty() -> None:
    card = ModelCard.parse(FIELDS)
    assert card.markdown.startswith("## Intended use\n\nclassify iris flowers")
    assert "| accuracy | 0.97 |" in card.markdown and "## Owner\n\nml-team" in card.markdown
    assert "Ethical" not in card.markdown
    written = ModelCard.parse({**FIELDS, "markdown": "# Iris\nhand written", "ethical_considerations": "none"})
    assert written.markdown == "# Iris\nhand written"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"owner": None}, "owner: required field is missing"),
        ({"intended_uses": "x"}, r"intended_uses: unknown field \(did you mean 'intended_use'\?\)"),
        ({"metrics": {"accuracy": "high"}}, "metrics.accuracy: Input should be a valid number"),
        ({"limitations": ""}, "limitations: String should have at least 1 character"),
    ],
)
def test_invalid_cards(change: dict[str, object], message: str) -> None:
    data = {k: v for k, v in {**FIELDS, **change}.items() if v is not None}  # None: the field is left out
    with pytest.raises(InvalidArgument, match=message):
        ModelCard.parse(data)
    with pytest.raises(InvalidArgument, match="a model card must be a mapping"):
        ModelCard.parse(["not", "a", "card"])


def test_revisions(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    cards = CardStore(store)
    with pytest.raises(NotFound, match=r"model 'iris' version 1 has no model card; set one with `strato models card"):
        cards.get("iris", "1")
    assert not cards.exists("iris", "1")
    first = cards.add("iris", "1", ModelCard.parse(FIELDS), "alice")
    second = cards.add("iris", "1", ModelCard.parse({**FIELDS, "owner": "bob"}), "bob")
    other = cards.add("iris", "2", ModelCard.parse(FIELDS), "alice")
    assert (first.revision, second.revision, other.revision) == (1, 2, 1)
    assert cards.get("iris", "1").card.owner == "bob"
    assert cards.get("iris", "1", 1).card.owner == "ml-team"
    assert [r.revision for r in cards.history("iris", "1")] == [1, 2]
    assert cards.get("iris", "1").to_dict()["markdown"] == second.card.markdown
    with pytest.raises(NotFound, match=r"has no card revision 5 \(revisions 1 to 2\)"):
        cards.get("iris", "1", 5)
    store.close()
