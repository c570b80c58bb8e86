package e2e

import (
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// The binaries, processes and tool checks are internal/testenv's.
func TestMain(m *testing.M) { testenv.Main(m) }
