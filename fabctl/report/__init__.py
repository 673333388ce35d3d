"""The device history record (PDF/HTML), the label, and the self-verifying trace archive."""
