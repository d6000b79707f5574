"""rightsdesk benchmarks: `make bench` (never a timed test). Results go to docs/benchmarks.md."""
