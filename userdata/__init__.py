"""The workers' EC2 user-data (a stub in ``template.yaml``) rendered like ``Fn::Sub`` for tests."""
