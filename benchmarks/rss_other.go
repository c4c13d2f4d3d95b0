//go:build !linux

package benchmarks

func resetPeakRSS() bool { return false }
func peakRSS() uint64    { return 0 }
func currentRSS() uint64 { return 0 }
