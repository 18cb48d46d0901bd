"""The PyPI ``as4`` package as an independent OOTS partner access point (own venv, own process)."""
