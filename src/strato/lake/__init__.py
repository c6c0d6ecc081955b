"""Lake tables: Delta Lake tables under the workspace's lake root."""
