"""Lineage: what each dataset, job, run, model version and endpoint came from."""
