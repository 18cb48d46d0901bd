"""SF1601 (Afsend post): the token-secured REST route of SF2250's EP_SP1 and EP_SP4.

Per agreement (``print_routes.py``) ``spoergTilmelding`` and ``afsendBrev`` go either to the
NemSMS register the SF1600 way (``../sf1600/``) or to SF1601 (``calls.py``: PostForespoerg
and KombiPostAfsend with a MeMo of type NEMSMS, ``memo.py``), over mutual TLS with a
holder-of-key access token (``serviceplatform.outbound.token_credential``).
"""
