"""Speed benchmarks against other libraries, one process per run; see benchmarks/README.md."""
