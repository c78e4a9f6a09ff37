"""fleetctl: the operators' command line for an ec2-fleet-autoscaler stack.

It drives the same control plane the functions run (``autoscaler.entrypoints``), found through
the CloudFormation stack's outputs and parameters; see docs/fleetctl.md.
"""
