package fakeidp

import (
	"html/template"
	"net/http"
	"slices"
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem} .problem{color:#a00;font-weight:600} button{margin:.2rem 0;padding:.4rem .8rem}
.user{display:block;width:100%;text-align:left} .muted{color:#777;font-size:.9rem}
label{display:block;margin:.4rem 0} input[type=email],input[type=password]{width:100%;padding:.3rem}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="muted">Fake identity provider for development — never use it in production.</p>
{{if .Problem}}<p class="problem" role="alert">{{.Problem}}</p>{{end}}
{{if .Client}}
<p>Sign in to continue to <strong>{{.Client}}</strong>.</p>
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<h2>Pick a user</h2>
{{range .Users}}<button class="user" type="submit" name="subject" value="{{.Subject}}"{{if .Disabled}} disabled{{end}}>{{.Name}}{{if .Email}} &lt;{{.Email}}&gt;{{end}}{{if .Disabled}} (disabled){{end}}</button>
{{end}}</form>
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<h2>Or sign in with e-mail</h2>
<label>E-mail <input type="email" name="email" value="{{.LoginHint}}" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
<button type="submit" name="action" value="deny" formnovalidate>Cancel</button>
</form>
{{end}}
{{if .Endpoints}}<h2>Endpoints</h2><ul>{{range .Endpoints}}<li><code>{{.}}</code></li>{{end}}</ul>
<h2>Users</h2><ul>{{range .Users}}<li>{{.Subject}}: {{.Name}}{{if .Email}} &lt;{{.Email}}&gt;{{end}}{{if .Disabled}} (disabled){{end}}</li>{{end}}</ul>{{end}}
</body></html>
`))

type hiddenField struct{ Name, Value string }

type pageData struct {
	Title     string
	Problem   string
	Client    string
	Action    string
	LoginHint string
	Hidden    []hiddenField
	Users     []User
	Endpoints []string
}

var flavourTitles = map[flavour]string{
	flavourOkta:     "Okta (fake) sign-in",
	flavourGoogle:   "Sign in with Google (fake)",
	flavourFacebook: "Log in to Facebook (fake)",
}

// loginFields are the form fields the login page adds; everything else in
// the request is carried through as hidden fields.
var loginFields = []string{"subject", "email", "password", "action"}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, f flavour, clientID string, status int, problem string) {
	d := pageData{
		Title:     flavourTitles[f],
		Problem:   problem,
		Client:    clientID,
		Action:    r.URL.Path,
		LoginHint: r.Form.Get("login_hint"),
		Users:     s.Users(),
	}
	keys := make([]string, 0, len(r.Form))
	for k := range r.Form {
		if !slices.Contains(loginFields, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		d.Hidden = append(d.Hidden, hiddenField{Name: k, Value: r.Form.Get(k)})
	}
	s.render(w, status, d)
}

func (s *Server) renderError(w http.ResponseWriter, status int, problem string) {
	s.render(w, status, pageData{Title: "Fake IdP: error", Problem: problem})
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	base := s.baseURL(r)
	s.render(w, http.StatusOK, pageData{
		Title: "Fake identity provider",
		Users: s.Users(),
		Endpoints: []string{
			"Okta issuer: " + base + "/oauth2/default",
			"Google issuer: " + base,
			"Facebook dialog: " + base + "/dialog/oauth, Graph: " + base,
		},
	})
}

func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, d); err != nil {
		s.logger.Error("fakeidp: render page", "err", err)
	}
}
