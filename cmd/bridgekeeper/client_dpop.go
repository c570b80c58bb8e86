package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

const requireDPoPHelp = "refuse the client's token requests without a DPoP proof (RFC 9449): its tokens are bound to a key the client holds"

// dpopColumn is the DPOP column of client list.
func dpopColumn(c *storage.Client) string {
	if c.RequireDPoP {
		return "required"
	}
	return "optional"
}

const requireMFAHelp = "sign users in to this client only with a second factor (acr urn:bridgekeeper:acr:mfa), whatever the request asks: a local account proves one at the broker, a federated login needs an upstream that reports one in amr (else access_denied)"

// mfaColumn is the MFA column of client list.
func mfaColumn(c *storage.Client) string {
	if c.RequireMFA {
		return "required"
	}
	return "optional"
}

// clientUpdateCommand changes the settings of a registered client that
// its flags name; the others stay as they are.
func (e *env) clientUpdateCommand() *cobra.Command {
	var requireDPoP, requireMFA bool
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a client's settings (those named by flags)",
		Example: `  bridgekeeper client update spa --require-dpop
  bridgekeeper client update spa --require-dpop=false
  bridgekeeper client update spa --require-mfa`,
		Args: exactArgs(1, "the client id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dpop, mfa := cmd.Flags().Changed("require-dpop"), cmd.Flags().Changed("require-mfa")
			if !dpop && !mfa {
				return errors.New("nothing to change: name a setting (--require-dpop, --require-mfa)")
			}
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				c, err := store.LookupClient(ctx, args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				} else if err != nil {
					return fmt.Errorf("get client: %w", err)
				}
				if dpop {
					c.RequireDPoP = requireDPoP
				}
				if mfa {
					c.RequireMFA = requireMFA
				}
				if err := store.UpdateClient(ctx, c); err != nil {
					if errors.Is(err, storage.ErrInvalidClient) {
						return flagErrors(err)
					}
					return fmt.Errorf("update client: %w", err)
				}
				fmt.Fprintf(e.stdout, "updated client %q (DPoP %s, MFA %s)\n", c.ID, dpopColumn(c), mfaColumn(c))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&requireDPoP, "require-dpop", false, requireDPoPHelp)
	cmd.Flags().BoolVar(&requireMFA, "require-mfa", false, requireMFAHelp)
	e.bindConfig(cmd, false)
	return cmd
}
