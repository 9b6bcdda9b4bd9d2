package main

import (
	"os"
	"strconv"
	"strings"
)

// The Go runtime knows nothing of a container's memory limit: without a soft
// limit (GOMEMLIMIT) its collector lets the heap double before collecting,
// and a burst (a first sync of a large territory, an import, sign-ins
// hashing passwords) can pass the container's limit and be killed where a
// collection would have made room. So serve sets GOMEMLIMIT, when it is not
// set, to 90% of the cgroup's limit; the rest is for what the runtime does
// not count (SQLite's page caches, goroutine stacks in flight).

// memoryLimitShare is the part of the container's limit given to the Go
// heap's soft limit.
const memoryLimitShare = 0.9

// softMemoryLimit returns the soft limit serve should set, in bytes, or 0
// for none: GOMEMLIMIT is set already, or no file states a limit (no
// container, "max", or cgroup v1's stand-in for none, a number near 2^63).
func softMemoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	// Where Linux states a container's memory limit: cgroup v2, then v1.
	for _, f := range [...]string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		raw, err := readFile(f)
		if err != nil {
			continue
		}
		limit, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil || limit <= 0 || limit >= 1<<62 {
			return 0 // "max", or no limit worth the name
		}
		return int64(float64(limit) * memoryLimitShare)
	}
	return 0
}

// readSystemFile reads a file of the system (the cgroup's limit).
func readSystemFile(name string) ([]byte, error) { return os.ReadFile(name) }
