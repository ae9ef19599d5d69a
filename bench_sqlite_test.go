package jobs_test

import "testing"

// sqliteBenchBackends returns the SQLite backends for benchmarks.
func sqliteBenchBackends() []benchBackend { return nil }

var _ = testing.Short
