"""Inbound security: KOMBIT-style STS tokens, WS-Security signatures, replay protection.

The validator and the client-side signer live here; both are pure functions over lxml trees
plus keys, except for the replay cache, which is injected.
"""
