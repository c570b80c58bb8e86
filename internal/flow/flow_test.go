package flow

import "testing"

func TestParseForm(t *testing.T) {
	page := []byte(`<html><form method="get" action="/search"><input name="q"></form>
<form method="post" action="https://id.example.com/login?a=1&amp;b=2" novalidate>
  <input type="hidden" name="login" value="L&amp;1">
  <input id="email" name="email" type="email" value="">
  <input name="password" type="password">
  <button>Sign in</button>
</form>`)
	action, fields, err := parseForm(page)
	if err != nil {
		t.Fatal(err)
	}
	if action != "https://id.example.com/login?a=1&b=2" {
		t.Errorf("action %q", action)
	}
	if fields.Get("login") != "L&1" || !fields.Has("email") || !fields.Has("password") || fields.Has("q") {
		t.Errorf("fields %v", fields)
	}
	if _, _, err := parseForm([]byte(`<p>no form</p>`)); err == nil {
		t.Error("a page without a form parsed")
	}
}
