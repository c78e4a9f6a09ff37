"""The stack's template (``template.yaml``) read offline: see :mod:`fleet_template.cfn`."""
