"""Printer transports: the Printer interface, its drivers, and the registry from profile to driver."""
