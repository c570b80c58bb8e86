package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// passkeys builds the passkey service of accounts.passkeys (nil when
// off): RP ID and origins from the issuer unless configured. WebAuthn
// needs a domain name: an issuer on an IP address (http://127.0.0.1:…)
// without accounts.passkeys.rp_id runs without passkeys, and says so.
func passkeys(cfg config.Config, store *storage.Store, log *slog.Logger) (*passkey.Service, error) {
	pc := cfg.Accounts.Passkeys
	if !pc.Enabled {
		return nil, nil
	}
	if u, err := url.Parse(cfg.Issuer); err == nil && pc.RPID == "" && net.ParseIP(u.Hostname()) != nil {
		log.Warn("passkeys are off: the issuer's host is an IP address and WebAuthn needs a domain name (use localhost, or set accounts.passkeys.rp_id and accounts.passkeys.origins)", "issuer", cfg.Issuer)
		return nil, nil
	}
	var origins []string
	for _, o := range strings.Split(pc.Origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	svc, err := passkey.New(passkey.Config{
		Store: store, Issuer: cfg.Issuer, RPID: pc.RPID, Origins: origins,
		DisplayName: cfg.UI.ProductName, Logger: log.With("component", "passkeys"),
	})
	if err != nil {
		return nil, fmt.Errorf("accounts.passkeys: %w", err)
	}
	return svc, nil
}
