package accounts

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	texttemplate "text/template"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
)

//go:embed templates
var embedded embed.FS

// Page templates: each defines "content" and is rendered inside layout.html.
var pageNames = []string{"register", "resend", "activate", "reset", "reset_confirm", "account", "email_confirm", "message"}

// Mail templates: NAME.txt (text/template, defines "subject") and NAME.html
// (html/template).
var mailNames = []string{"activate", "reset", "register_exists", "email_change", "email_changed"}

type templates struct {
	pages    map[string]*htmltemplate.Template
	mailText map[string]*texttemplate.Template
	mailHTML map[string]*htmltemplate.Template
}

// loadTemplates parses the embedded templates, each replaced by the file of
// the same name in dir when there is one.
func loadTemplates(dir string) (*templates, error) {
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("template %s: %w", name, err)
			}
		}
		b, err := embedded.ReadFile("templates/" + name)
		if err != nil {
			return "", fmt.Errorf("template %s: %w", name, err)
		}
		return string(b), nil
	}
	t := &templates{
		pages:    map[string]*htmltemplate.Template{},
		mailText: map[string]*texttemplate.Template{},
		mailHTML: map[string]*htmltemplate.Template{},
	}
	layoutSrc, err := read("layout.html")
	if err != nil {
		return nil, err
	}
	layout, err := htmltemplate.New("layout.html").Parse(layoutSrc)
	if err != nil {
		return nil, fmt.Errorf("template layout.html: %w", err)
	}
	formsSrc, err := read("forms.html")
	if err != nil {
		return nil, err
	}
	if _, err := layout.New("forms.html").Parse(formsSrc); err != nil {
		return nil, fmt.Errorf("template forms.html: %w", err)
	}
	for _, name := range pageNames {
		src, err := read(name + ".html")
		if err != nil {
			return nil, err
		}
		page, err := htmltemplate.Must(layout.Clone()).Parse(src)
		if err != nil {
			return nil, fmt.Errorf("template %s.html: %w", name, err)
		}
		t.pages[name] = page
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

// page renders a page into a buffer (so that an error leaves nothing sent).
func (t *templates) page(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := t.pages[name].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
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
