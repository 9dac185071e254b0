"""CRM simulator: cases, a change feed, write-backs and optional signed webhook push."""
from simulators.crm.app import create_app

__all__ = ["create_app"]
