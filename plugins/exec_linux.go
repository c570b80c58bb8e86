package plugins

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// execChecked makes cmd execute the open file f, which the host has just
// hashed, instead of whatever cmd.Path names by the time the process
// starts: the kernel executes /proc/self/fd/N, which is f itself even if
// its path was renamed, replaced or removed. f is close-on-exec, so the
// plugin does not inherit it; os/exec keeps the program's name (Args[0]).
// It returns the file to keep open until the process has started (a
// duplicate of f, which it closes, when f's number was too low).
func execChecked(cmd *exec.Cmd, f *os.File) (*os.File, error) {
	// In the child, os/exec puts standard input, output, error and
	// ExtraFiles on descriptors 0, 1, 2, 3, … before exec: the checked
	// file must sit above them or it would be replaced.
	if low := 3 + len(cmd.ExtraFiles); int(f.Fd()) < low {
		fd, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_DUPFD_CLOEXEC, uintptr(low))
		if errno != 0 {
			return f, fmt.Errorf("duplicating the checked file: %w", errno)
		}
		dup := os.NewFile(fd, f.Name())
		f.Close()
		f = dup
	}
	self := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if _, err := os.Stat(self); err != nil {
		return f, fmt.Errorf("the checked file cannot be executed through /proc/self/fd (is /proc mounted?): %w", err)
	}
	cmd.Path = self
	return f, nil
}
