"""EC2 user-data of the fleet workers (``bootstrap.sh``) and its Fn::Sub renderer."""
