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
// set, to 90% of the container's limit; the rest is for what the runtime
// does not count (SQLite's page caches, goroutine stacks in flight). The
// limit is FIELDCRM_MEMORY_LIMIT when given (bytes: the Kubernetes manifests
// fill it from the container's limits.memory, which does not depend on how
// the node mounts cgroups), else the cgroup's. Setting GOMEMLIMIT itself
// from limits.memory would give the heap all of it, and nothing to the rest.

// memoryLimitShare is the part of the container's limit given to the Go
// heap's soft limit.
const memoryLimitShare = 0.9

// softMemoryLimit returns the soft limit serve should set, in bytes, or 0
// for none: GOMEMLIMIT is set already, or neither FIELDCRM_MEMORY_LIMIT nor
// a file states a limit (no container, "max", or cgroup v1's stand-in for
// none, a number near 2^63). parseServeConfig has checked
// FIELDCRM_MEMORY_LIMIT.
func softMemoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	if given := getenv("FIELDCRM_MEMORY_LIMIT"); given != "" {
		limit, err := strconv.ParseInt(strings.TrimSpace(given), 10, 64)
		if err == nil && limit > 0 && limit < 1<<62 {
			return int64(float64(limit) * memoryLimitShare)
		}
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
