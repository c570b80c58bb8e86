package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// passkeys builds the passkey service of accounts.passkeys (nil when
// off): RP ID and origins from the issuer unless configured.
func passkeys(cfg config.Config, store *storage.Store, log *slog.Logger) (*passkey.Service, error) {
	pc := cfg.Accounts.Passkeys
	if !pc.Enabled {
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
