package redirecturi

import "testing"

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		registered, requested string
		native, want          bool
	}{
		{"https://app.example/cb", "https://app.example/cb", false, true},
		{"https://app.example/cb", "https://app.example/cb/", false, false},
		{"https://app.example/cb", "https://APP.example/cb", false, false},
		{"https://app.example/cb", "https://app.example/%63b", false, false},
		{"https://app.example/cb", "https://u@app.example/cb", false, false},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:1/cb", true, true},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1/cb", true, true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:65535/cb", true, true},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:1/cb", false, false},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:65536/cb", true, false},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:0/cb", true, false},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:0001/cb", true, false},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:+1/cb", true, false},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:1/%63b", true, false},
		{"http://127.0.0.1:9999/cb", "http://x@127.0.0.1:1/cb", true, false},
		{"http://127.0.0.1:9999/cb", "http://127.0.0.1:1/cb?a", true, false},
		{"http://127.0.0.1:9999/cb?a", "http://127.0.0.1:1/cb?a", true, true},
		{"http://127.0.0.1:9999/cb", "http://[::1]:1/cb", true, false},
		{"http://[::1]:9999/cb", "http://[::1]:1/cb", true, true},
		{"http://localhost:9999/cb", "http://localhost:1/cb", true, false},
		{"https://127.0.0.1:9999/cb", "https://127.0.0.1:1/cb", true, false},
		{"https://127.0.0.1:9999/cb", "http://127.0.0.1:1/cb", true, false},
		{"http://127.0.0.1:9999", "http://127.0.0.1:1", true, true},
		{"http://127.0.0.1:9999", "http://127.0.0.1:1/", true, false},
		{"http://u@127.0.0.1:9999/cb", "http://u@127.0.0.1:9999/cb", false, false},
		{"https://app.example/cb", "", false, false},
		{"javascript:alert(1)", "javascript:alert(1)", false, false},
		{"data:text/html,x", "data:text/html,x", true, false},
	} {
		if got := Match([]string{tc.registered}, tc.requested, tc.native); got != tc.want {
			t.Errorf("Match(%q, %q, native=%v) = %v, want %v", tc.registered, tc.requested, tc.native, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://app.example/cb":     true,
		"http://127.0.0.1:5173/cb":   true,
		"http://[::1]/cb":            true,
		"http://localhost:5173/cb":   true,
		"com.example.app:/cb":        true,
		"http://app.example/cb":      false,
		"http://127.evil.example/cb": false,
		"https://u@app.example/cb":   false,
		"https://u:p@app.example/cb": false,
		"https://app.example/cb#x":   false,
		"https://app.example/cb#":    false,
		"/cb":                        false,
		"https://app.example/%zz":    false,
		"javascript:alert(1)//":      false,
		"JavaScript:alert(1)":        false,
		"data:text/html,<p>x":        false,
		"file:///etc/passwd":         false,
		"vbscript:msgbox":            false,
		"blob:https://app.example/x": false,
		"about:blank":                false,
		"https:/cb":                  false,
		"https:///cb":                false,
	} {
		if err := Check(raw); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}
