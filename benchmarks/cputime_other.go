//go:build !unix

package benchmarks

import "time"

// processCPU is not measured on this platform: per-CPU-second figures read 0.
func processCPU() time.Duration { return 0 }
