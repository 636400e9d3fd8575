"""hookpost's benchmarks: reproducible runs that print their figures. Never run as tests."""
