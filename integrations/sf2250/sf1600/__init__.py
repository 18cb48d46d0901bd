"""SF1600 Print 2 as SF2250 uses it: ``spoergTilmelding`` (EP_SP1) and ``afsendBrev`` (EP_SP4).

A subpackage of ``integrations.sf2250``, not an integration of its own: the two operations
route by SF2250's NemSMS and Afsendersystem SysIDs, call the same NemSMS register and are
registered by :mod:`integrations.sf2250.integration` beside VedligeholdTilmelding.

* :mod:`.service` - the spyne service behind the SF1600 contract (SOAP 1.1 and 1.2);
* :mod:`.messages` - the requests as plain values;
* :mod:`.sms_rules` - the NemSMS rules an SMS must pass before anything is sent;
* :mod:`.mapping` - EP_NS1/EP_NS4 over OIOREST;
* :mod:`.handler` - the business logic of both operations.
"""
