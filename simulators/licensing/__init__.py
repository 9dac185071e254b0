"""A stand-in for an Idox Uniform style licensing system: its own database schema, reference data
and staff actions (deciding applications), on SQLite, PostgreSQL or MariaDB.

``backoffice.LicensingBackOffice`` is the Python API for tests and the demo;
``python -m simulators.licensing --url URL [--seed-demo] [--decide-pending]`` is the CLI.
Nothing in the product imports this package.
"""
