"""Lab fault test: a firewall ruleset nft rejects, past pgfortress's checks.

The ruleset is rendered from the inventory as usual, then one rule's verdict
is misspelt by hand (``acept``), which no inventory can produce. The role's
apply path must keep it from ever being loaded.
"""

from pgfortress.plan.firewall import render_nftables
from roles.firewall import firewall_spec, stage_and_apply

spec, state = firewall_spec()
text = render_nftables(spec)
broken = text.replace("tcp dport 22 accept", "tcp dport 22 acept", 1)
assert broken != text, "the ruleset has no SSH rule to break"
stage_and_apply(spec, state, broken)
