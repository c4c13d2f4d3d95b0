package benchmarks

import (
	"bytes"
	"os"
	"strconv"
)

// resetPeakRSS resets this process's peak resident set size (VmHWM), so that
// a later peakRSS covers only what follows. It reports false when the
// kernel does not allow it (then peakRSS is the peak since the start).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is VmHWM: the largest resident set size of this process since its
// start or the last resetPeakRSS, in bytes; 0 when unknown.
func peakRSS() uint64 { return procStatus("VmHWM:") }

// currentRSS is VmRSS, in bytes; 0 when unknown.
func currentRSS() uint64 { return procStatus("VmRSS:") }

func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte(field))
	if i < 0 {
		return 0
	}
	line := b[i+len(field):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line) // "123456 kB"
	if len(f) == 0 {
		return 0
	}
	kb, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}
