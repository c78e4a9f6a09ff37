"""The one fake of AWS that the tests and the twin share.

moto keeps the API's bookkeeping (ids, tags, registrations, items); this package adds what moto
lacks, at the twin's fidelity, for both:

- ``hooks``: botocore event hooks that answer, observe, fail or delay calls on a client;
- ``moto_backends``: the only code that reaches into moto's private modules;
- ``resources``: the network, launch template, target group and state table both build;
- ``targets``: target health as ELB reports it (registration, health checks, draining);
- ``target_group``: that state machine on a clock a test drives, answering DescribeTargetHealth;
- ``instances``: EC2 instance states as the API reports them (timed transitions, eventual
  consistency after RunInstances, IncorrectInstanceState);
- ``fleet_instances``: DescribeInstances and the refusals from that state machine, and
  ``FakeInstances``, which drives it on a clock a test keeps;
- ``metrics``: CloudWatch datapoints that become visible late, period statistics, GetMetricData.
"""
