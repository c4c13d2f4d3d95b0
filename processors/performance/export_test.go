package performance

// BenchPairs is benchPairs for the benchmarks of package performance_test.
var BenchPairs = benchPairs
