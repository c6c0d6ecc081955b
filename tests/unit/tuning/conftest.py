from tests.unit.tuning.world import tw

__all__ = ["tw"]
