"""Optuna's storage in Strato's own database: both schemas live side by side, Strato's migrations stay
in charge of alembic_version, and samplers seeded per trial reproduce their proposals."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from strato.errors import StratoError
from strato.specs import TuningJob
from strato.store.metadata import MetadataStore
from strato.tuning.space import distributions, trial_seed
from strato.tuning.strategies import STRATEGIES
from strato.tuning.study import Studies, optuna_url
from tests.unit.tuning.world import tuning_spec


def test_optuna_tables_sit_beside_strato_and_leave_its_migrations_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'strato.db'}"
    store = MetadataStore(url)
    with store.engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    studies = Studies(url)
    study = studies.open("strato-abc", "maximize")
    trial = study.ask()
    study.tell(trial, 1.0)
    studies.close()
    store.close()
    reopened = MetadataStore(url)  # migrates again: Strato's revision is still the one recorded
    with reopened.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == revision
        tables = set(sa.inspect(conn).get_table_names())
    assert {"resources", "metric_points", "studies", "trials", "version_info"} <= tables
    again = Studies(url)
    assert [t.value for t in again.open("strato-abc", "maximize").trials] == [1.0]
    again.close()
    reopened.close()


def test_optuna_refuses_a_database_strato_has_not_migrated(tmp_path: Path) -> None:
    studies = Studies(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StratoError, match="no Strato schema yet; open the metadata store"):
        studies.open("strato-x", "minimize")


def test_postgresql_urls_use_psycopg() -> None:
    assert optuna_url("postgresql://u:p@127.0.0.1/db") == "postgresql+psycopg://u:p@127.0.0.1/db"
    assert optuna_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def propose(spec: TuningJob, numbers: range) -> list[dict[str, object]]:
    import optuna

    study = optuna.create_study(direction="maximize")
    out = []
    for number in numbers:
        study.sampler = STRATEGIES.get(spec.strategy).sampler(spec, number)
        trial = study.ask(distributions(spec.search_space))
        study.tell(trial, float(number))
        out.append(trial.params)
    return out


def test_random_and_hyperband_propose_the_same_trials_for_a_seed() -> None:
    random = propose(tuning_spec(strategy="random"), range(5))
    assert propose(tuning_spec(strategy="hyperband"), range(5)) == random
    assert propose(tuning_spec(strategy="random"), range(5)) == random
    assert propose(tuning_spec(strategy="random", seed=8), range(5)) != random
    assert trial_seed(7, 3) == trial_seed(7, 3) != trial_seed(7, 4)


def test_bayesian_proposes_inside_the_space_after_its_startup_trials() -> None:
    for params in propose(tuning_spec(strategy="bayesian", max_trials=12), range(12)):
        assert 1e-4 <= float(params["lr"]) <= 1e-1  # type: ignore[arg-type]
        assert params["kernel"] in ("linear", "rbf")


@pytest.mark.postgres
def test_studies_live_in_postgresql_too(postgres_url: str) -> None:
    store = MetadataStore(postgres_url)
    with store.engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    studies = Studies(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"strato-pg-{id(studies)}"
    study = studies.open(name, "minimize")
    for value in (3.0, 1.0, 2.0):
        trial = study.ask()
        study.tell(trial, value)
    studies.close()
    again = Studies(postgres_url)
    assert again.open(name, "minimize").best_value == 1.0
    again.delete(name)
    again.close()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == revision
    store.close()
    MetadataStore(postgres_url).close()  # Strato's migrations still run on a database Optuna shares


def test_hyperband_is_asha_by_default_and_hyperband_brackets_on_request() -> None:
    from optuna.pruners import HyperbandPruner, NopPruner, SuccessiveHalvingPruner

    assert isinstance(STRATEGIES.get("hyperband").pruner(tuning_spec(strategy="hyperband")), SuccessiveHalvingPruner)
    brackets = tuning_spec(strategy="hyperband", early_stopping={"brackets": "auto", "max_resource": 27})
    assert isinstance(STRATEGIES.get("hyperband").pruner(brackets), HyperbandPruner)
    assert isinstance(STRATEGIES.get("random").pruner(tuning_spec()), NopPruner)
