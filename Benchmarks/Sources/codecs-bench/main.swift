// Placeholder until the codec benchmarks land.
