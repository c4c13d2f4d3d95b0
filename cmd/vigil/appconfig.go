package main

import "github.com/vigil-ml/vigil/processors/performance"

// performanceConfig is the performance job's part of c.
func (c *Config) performanceConfig() performance.JobConfig {
	return performance.JobConfig{Window: c.Window.Size, Horizon: c.Labels.Horizon, Threshold: c.Labels.Threshold, SegmentKeys: c.SegmentKeys}
}
