"""Control plane of the EC2 fleet autoscaler: pure decisions, thin AWS adapters, thin handlers."""
