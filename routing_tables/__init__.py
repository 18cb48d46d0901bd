"""Sample routing tables and agreements: sandbox data, never a default of an installation.

Installed as the data package ``serviceplatform.sandbox.routing_tables``; this file makes the
folder a package so that ``importlib.resources`` finds it in a wheel and in an editable install
alike (``pyproject.toml``, ``serviceplatform/resources.py``).
"""
