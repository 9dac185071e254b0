"""Stand-in for a housing repairs back office (JSON API, docs/connectors/housing.md); see
``app.create_app``."""
