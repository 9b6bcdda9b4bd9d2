package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the file in a data directory that the process using the
// directory's embedded SQLite engine holds an exclusive lock on.
const LockFileName = "fieldcrm.lock"

// ErrDirInUse means another process holds a data directory's lock.
var ErrDirInUse = errors.New("the data directory is in use")

// DirLock is an exclusive lock on a data directory, held until Release or
// the end of the process.
//
// Why a lock and not a pid file: the lock is the kernel's (flock), so it ends
// with the process however the process ends (kill -9 included). A lock file
// left behind by a dead process is only a file: the next process locks it.
// The file holds the owner's process id, for messages only.
type DirLock struct {
	f *os.File
}

// LockDir takes the lock of data directory dir (created if missing) without
// waiting. When another process, or another LockDir in this process, holds
// it, the error wraps ErrDirInUse and names the holder's process id.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !held {
		raw, _ := os.ReadFile(path)
		f.Close()
		holder := "another process"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			holder = fmt.Sprintf("process %d", pid)
		}
		return nil, fmt.Errorf("%s is locked by %s (a running fieldcrm serve or command): %w", dir, holder, ErrDirInUse)
	}
	// For people and error messages only; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f}, nil
}

// Release gives the lock up. The file stays: removing it could let two
// processes each lock a different file of the same name.
func (l *DirLock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Close() // closing the descriptor releases the flock
	l.f = nil
}
