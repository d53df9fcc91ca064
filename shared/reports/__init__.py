"""The weekly cleanup report (docs/reports.md): names only; the rest is imported on first use."""
