package main

import (
	"errors"
	"io/fs"
	"testing"
)

func TestSoftMemoryLimitIsNinetyPercentOfTheContainersUnlessSet(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	noEnv := func(string) string { return "" }
	cases := []struct {
		name   string
		getenv func(string) string
		files  map[string]string
		want   int64
	}{
		{"cgroup v2 limit of 768 MiB", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "805306368\n"}, 724775731},
		{"cgroup v2 without a limit", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0},
		{"cgroup v1 limit of 512 MiB", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n"}, 483183820},
		{"cgroup v1 without a limit", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0},
		{"not in a container", noEnv, nil, 0},
		{"garbage", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "a lot\n"}, 0},
		{"FIELDCRM_MEMORY_LIMIT from the manifest's limits.memory", func(k string) string {
			if k == "FIELDCRM_MEMORY_LIMIT" {
				return "805306368"
			}
			return ""
		}, map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 724775731},
		{"GOMEMLIMIT set by the operator", func(k string) string {
			if k == "GOMEMLIMIT" {
				return "300MiB"
			}
			return ""
		}, map[string]string{"/sys/fs/cgroup/memory.max": "805306368\n"}, 0},
	}
	for _, c := range cases {
		if got := softMemoryLimit(c.getenv, files(c.files)); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if _, err := readSystemFile("/nonexistent/memory.max"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading a missing file: %v", err)
	}
}
