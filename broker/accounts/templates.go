package accounts

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"log/slog"
	texttemplate "text/template"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
)

//go:embed templates
var embedded embed.FS

// Page templates: each defines "content" and is rendered inside frame.html
// (the title, the alerts and the ways back), itself in the page kit's
// layout.
var pageNames = []string{"register", "resend", "activate", "reset", "reset_confirm", "account", "account_mfa", "account_passkey", "email_confirm", "message"}

// Mail templates: NAME.txt (text/template, defines "subject") and NAME.html
// (html/template).
var mailNames = []string{"activate", "reset", "register_exists", "email_change", "email_changed", "factor_changed"}

type templates struct {
	pages    *pagekit.Pages
	mailText map[string]*texttemplate.Template
	mailHTML map[string]*htmltemplate.Template
}

// loadTemplates parses the pages (with the page kit) and the e-mails, each
// replaced by the file of the same name in theme.TemplateDir when there is
// one.
func loadTemplates(theme Theme, secure bool, log *slog.Logger) (*templates, error) {
	fsys, err := fs.Sub(embedded, "templates")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	family := pagekit.Family{FS: fsys, Shared: []string{"forms.html", "frame.html", "passkeys.html"}, Entry: "frame.html"}
	for _, name := range pageNames {
		family.Pages = append(family.Pages, name+".html")
	}
	// Every form posts to the account pages, which answer on this site.
	pages, err := pagekit.Load(pagekit.Options{Theme: theme, Secure: secure, FormActionSelf: true, Logger: log}, family)
	if err != nil {
		return nil, err
	}
	read := func(name string) (string, error) { return pagekit.ReadTemplate(theme.TemplateDir, fsys, name) }
	t := &templates{
		pages:    pages,
		mailText: map[string]*texttemplate.Template{},
		mailHTML: map[string]*htmltemplate.Template{},
	}
	for _, name := range mailNames {
		src, err := read("mail/" + name + ".txt")
		if err != nil {
			return nil, err
		}
		text, err := texttemplate.New(name).Parse(src)
		if err != nil {
			return nil, fmt.Errorf("template mail/%s.txt: %w", name, err)
		}
		if text.Lookup("subject") == nil {
			return nil, fmt.Errorf("template mail/%s.txt: no {{define \"subject\"}}", name)
		}
		src, err = read("mail/" + name + ".html")
		if err != nil {
			return nil, err
		}
		html, err := htmltemplate.New(name).Parse(src)
		if err != nil {
			return nil, fmt.Errorf("template mail/%s.html: %w", name, err)
		}
		t.mailText[name], t.mailHTML[name] = text, html
	}
	return t, nil
}

// mail renders the e-mail name for to.
func (t *templates) mail(name, to string, data any) (mail.Message, error) {
	var subject, text, html bytes.Buffer
	if err := t.mailText[name].ExecuteTemplate(&subject, "subject", data); err != nil {
		return mail.Message{}, fmt.Errorf("render mail %s subject: %w", name, err)
	}
	if err := t.mailText[name].Execute(&text, data); err != nil {
		return mail.Message{}, fmt.Errorf("render mail %s: %w", name, err)
	}
	if err := t.mailHTML[name].Execute(&html, data); err != nil {
		return mail.Message{}, fmt.Errorf("render mail %s html: %w", name, err)
	}
	return mail.Message{To: to, Subject: string(bytes.TrimSpace(subject.Bytes())), Text: text.String(), HTML: html.String()}, nil
}
