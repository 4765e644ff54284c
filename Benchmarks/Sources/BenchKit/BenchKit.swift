// BenchKit: timing, percentiles, allocation counts.
