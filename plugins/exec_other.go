//go:build !linux

package plugins

import (
	"os"
	"os/exec"
)

// execChecked leaves cmd as it is: without /proc/self/fd the plugin is
// executed by its path, after the check (a swap of the file in between
// is not ruled out; keep the plugin's directory writable only by the
// broker's owner).
func execChecked(cmd *exec.Cmd, f *os.File) (*os.File, error) {
	return f, nil
}
