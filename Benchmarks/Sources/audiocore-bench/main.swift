// Placeholder until the audio core benchmarks land.
