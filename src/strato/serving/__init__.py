"""Online serving: endpoints, replicas, routing, batching and autoscaling."""
