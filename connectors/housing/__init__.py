"""Housing back offices: repairs (``repairs``, REST)."""
