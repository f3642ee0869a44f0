"""Real Docker engines and the state on them, for tests, benchmarks and the demo."""
