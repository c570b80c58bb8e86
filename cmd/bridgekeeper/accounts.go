package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// mailer returns the SMTP mailer the configuration names, or nil for the
// development default (links written to the log).
func mailer(cfg config.Config) (mail.Mailer, error) {
	if cfg.Accounts.SMTP.Host == "" {
		return nil, nil
	}
	return mail.NewSMTP(mail.SMTPConfig{
		Host:     cfg.Accounts.SMTP.Host,
		Port:     cfg.Accounts.SMTP.Port,
		TLS:      cfg.Accounts.SMTP.TLS,
		Username: cfg.Accounts.SMTP.Username,
		Password: cfg.Accounts.SMTP.Password,
		From:     cfg.Accounts.MailFrom,
	})
}

// newAccounts builds the local-account pages (registration, activation,
// password reset, account page, two-step verification); withAccounts puts
// them on the broker.
func newAccounts(cfg config.Config, store *storage.Store, m mail.Mailer, bcfg broker.Config, log *slog.Logger) (*accounts.Service, error) {
	factors := bcfg.Factors
	if cfg.Accounts.MFA == broker.MFAOff {
		factors = nil // no two-step verification on the account page either
	}
	return accounts.New(accounts.Config{
		Store:               store,
		Logger:              log.With("component", "accounts"),
		Issuer:              cfg.Issuer,
		Mailer:              m,
		AllowRegistration:   cfg.Accounts.AllowRegistration,
		RequireActivation:   cfg.Accounts.RequireActivation,
		Theme:               uiTheme(cfg),
		AccessTokenLifetime: broker.AccessTokenLifetime(bcfg),
		AllowedReturnURL:    newReturnURLChecker(store, 30*time.Second).allowed,
		Factors:             factors,
		MFAResetByEmail:     cfg.Accounts.MFAResetByEmail,
		Passkeys:            bcfg.Passkeys,
	})
}

// withAccounts serves the account pages beside the broker's, links them
// from the login page and its other pages, and gives the login form their
// brute-force limiter (its counters live in the database, so they hold
// across replicas and are shared with the account pages).
func withAccounts(bcfg *broker.Config, svc *accounts.Service) {
	bcfg.Mounts = append(bcfg.Mounts, func(r *mux.Router, s *broker.Server) error {
		svc.Routes(r, s)
		return nil
	})
	if svc.RegistrationOpen() {
		bcfg.LoginLinks = append(bcfg.LoginLinks, broker.LoginLink{Label: "Create account", Href: svc.RegisterURL(""), WithLogin: true})
	}
	bcfg.LoginLinks = append(bcfg.LoginLinks, broker.LoginLink{Label: "Forgot password?", Href: svc.ResetURL(""), WithLogin: true})
	bcfg.AccountPages = broker.AccountPages{Account: svc.AccountURL(""), Resend: svc.ResendURL("")}
	bcfg.LoginLimiter = svc.Limiter()
}

// uiTheme is the one theme of every page (broker, account pages,
// federation) and of the e-mails, from cfg.UI.
func uiTheme(cfg config.Config) pagekit.Theme {
	return pagekit.Theme{
		ProductName:  cfg.UI.ProductName,
		LogoURL:      cfg.UI.LogoURL,
		PrimaryColor: cfg.UI.PrimaryColor,
		TemplateDir:  cfg.UI.TemplateDir,
	}
}

// notifyFactorsReset e-mails the owner of userID that an operator removed
// the account's second factors, with the configured mailer (the log one
// without SMTP), and waits for the mail to go out.
func (e *env) notifyFactorsReset(ctx context.Context, cfg config.Config, store *storage.Store, userID string) error {
	m, err := mailer(cfg)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	acc, err := accounts.New(accounts.Config{Store: store, Logger: e.logger(cfg), Issuer: cfg.Issuer, Mailer: m, Theme: uiTheme(cfg)})
	if err != nil {
		return fmt.Errorf("account e-mails: %w", err)
	}
	acc.NotifyFactor(ctx, userID, mfa.EventFactorsReset)
	return acc.Close()
}

// returnURLChecker allows return links to registered applications only: a
// URL whose origin is a client's allowed origin, or a client's redirect or
// post-logout redirect URI. The client list is cached briefly.
type returnURLChecker struct {
	store interface {
		ListClients(ctx context.Context) ([]storage.Client, error)
	}
	ttl time.Duration

	mu      sync.Mutex
	loaded  time.Time
	origins []string
	uris    []string
}

func newReturnURLChecker(store *storage.Store, ttl time.Duration) *returnURLChecker {
	return &returnURLChecker{store: store, ttl: ttl}
}

func (c *returnURLChecker) allowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	origins, uris := c.lists()
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	return slices.Contains(origins, origin) || slices.Contains(uris, raw)
}

func (c *returnURLChecker) lists() ([]string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.loaded) < c.ttl {
		return c.origins, c.uris
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clients, err := c.store.ListClients(ctx)
	if err != nil {
		return c.origins, c.uris // keep the last good lists
	}
	c.origins, c.uris = nil, nil
	for _, cl := range clients {
		for _, o := range cl.AllowedOrigins {
			c.origins = append(c.origins, strings.ToLower(o))
		}
		c.uris = append(c.uris, cl.RedirectURIs...)
		c.uris = append(c.uris, cl.PostLogoutRedirectURIs...)
	}
	c.loaded = time.Now()
	return c.origins, c.uris
}
