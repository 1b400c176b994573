"""The container's network beyond its own namespace (lesson 08).

The network namespace itself is `namespaces.net`; here is what connects it: `bridge` (the
host's bridge, veth pairs, addresses, published ports) and `nft` (the NAT and forwarding rules).
"""
