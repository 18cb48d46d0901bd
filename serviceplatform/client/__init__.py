"""What a caller of the platform uses, not the platform itself.

- ``request_signer``: signs a SOAP request the way KOMBIT's clients do (WS-Security with the
  holder-of-key token, the wsa headers, the timestamp), and a zeep plugin doing the same;
- ``token_minter``: mints a KOMBIT-style SAML holder-of-key assertion with an STS key, in
  place of KOMBIT's STS.

The examples, the sandbox, the benchmarks and the tests use it; product code never imports it
(``tests/unit/test_architecture.py``).
"""
