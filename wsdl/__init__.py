"""The contracts the platform serves, installed as the data package ``serviceplatform.wsdl``.

Only data lives here: this file makes the folder a package so that ``importlib.resources``
finds it in a wheel and in an editable install alike (``pyproject.toml``,
``serviceplatform/resources.py``).
"""
