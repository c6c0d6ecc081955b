from tests.unit.jobs.world import world

__all__ = ["world"]
