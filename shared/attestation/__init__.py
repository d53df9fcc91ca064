"""Sponsor attestation (docs/attestation.md): keep / let-go links in the sponsor notice, the confirmation page
(GET) and the action (POST), and the identity team's list / grant / revoke. Names only: see the modules."""
