"""Thin AWS adapters: one per service, boto3 in, domain types and domain errors out."""
