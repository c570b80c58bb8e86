package sdk

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestPluginExitsWithItsParent starts the test connector from a shell that
// exits at once, as a broker killed with SIGKILL would: the orphaned plugin
// must end by itself. Its standard output reaches EOF when it does.
func TestPluginExitsWithItsParent(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The shell starts the plugin and exits when the test says so.
	bin := testenv.Binary(t, "./plugins/internal/testconnector")
	sh := exec.Command("sh", "-c", `"$0" & read done`, bin)
	sh.Env = append(os.Environ(), wire.MagicCookieKey+"="+wire.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1")
	sh.Stdout = w
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := r.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(r)
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "1|1|unix|") {
		t.Fatalf("handshake line %q, %v", line, err)
	}
	// The plugin is serving; now its parent goes away.
	if _, err := io.WriteString(stdin, "done\n"); err != nil {
		t.Fatal(err)
	}
	if err := sh.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, out); err != nil {
		t.Fatalf("the orphaned plugin did not exit: %v", err)
	}
}
