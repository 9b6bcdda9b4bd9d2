//go:build !unix

package embedded

import "os"

// tryLock has no lock to take off Unix: the data directory is not guarded
// there, and restore cannot tell whether a server uses it.
func tryLock(*os.File) (bool, error) { return true, nil }
