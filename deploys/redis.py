"""Redis for the gateways' shared rate limits, on the ``cache`` hosts.

pyinfra inventories/<env>.py deploys/redis.py
"""

from pyinfra.context import host

from roles.redis import redis

if "cache" in host.groups:
    redis()
