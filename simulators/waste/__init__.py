"""Stand-in for the waste back office (Bartec Collective style SOAP); see ``app.create_app``."""
