"""The control plane server: FastAPI app factory, the daemon around it, and the platform wiring."""
