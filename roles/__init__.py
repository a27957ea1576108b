"""Provisioning roles: pyinfra packaged deploys that read facts and apply a plan.

"Role" here always means a provisioning role. PostgreSQL's own kind is called a
database role everywhere in pgfortress.
"""
