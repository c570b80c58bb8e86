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

// clientUpdateCommand changes the settings of a registered client that
// its flags name; the others stay as they are.
func (e *env) clientUpdateCommand() *cobra.Command {
	var requireDPoP bool
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a client's settings (those named by flags)",
		Example: `  bridgekeeper client update spa --require-dpop
  bridgekeeper client update spa --require-dpop=false`,
		Args: exactArgs(1, "the client id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("require-dpop") {
				return errors.New("nothing to change: name a setting (--require-dpop)")
			}
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				c, err := store.LookupClient(ctx, args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				} else if err != nil {
					return fmt.Errorf("get client: %w", err)
				}
				c.RequireDPoP = requireDPoP
				if err := store.UpdateClient(ctx, c); err != nil {
					if errors.Is(err, storage.ErrInvalidClient) {
						return flagErrors(err)
					}
					return fmt.Errorf("update client: %w", err)
				}
				fmt.Fprintf(e.stdout, "updated client %q (DPoP %s)\n", c.ID, dpopColumn(c))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&requireDPoP, "require-dpop", false, requireDPoPHelp)
	e.bindConfig(cmd, false)
	return cmd
}
