"""The pipeline runner: intake → validate → orient → support → slice → job → transport, with gates and a stage cache (DESIGN.md §2)."""
