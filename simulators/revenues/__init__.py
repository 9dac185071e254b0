"""Revenues (Council Tax + Business Rates) back-office simulator, NEC/Northgate style, over SOAP."""
