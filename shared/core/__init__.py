"""The capability core: what every capability's apply shares (a run's audit log, the guarded applier).

A capability brings its action kinds, its re-check and one effect per kind; the core holds the run's
lease, claims each action once, audits each change exactly once and records each result (see
docs/architecture.md, "Adding a capability").
"""
