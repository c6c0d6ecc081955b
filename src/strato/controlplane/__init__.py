"""The reconcile loop that drives every resource from its stored desired state."""

from strato.controlplane.loop import ReconcileLoop, Reconciler

__all__ = ["ReconcileLoop", "Reconciler"]
