"""fabctl: from a planned PVP guide-plate design to a sterile, traceable printed guide."""

__version__ = "0.1.0"
