package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts/policy"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

func (e *env) userCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage local user accounts",
	}
	cmd.AddCommand(
		e.userCreateCommand(),
		e.userListCommand(),
		e.userSetEnabledCommand("disable", true),
		e.userSetEnabledCommand("enable", false),
		e.userDeleteCommand(),
		e.userSetPasswordCommand(),
		e.userResetMFACommand(),
	)
	return cmd
}

func (e *env) userCreateCommand() *cobra.Command {
	var (
		u             storage.User
		passwordStdin bool
		inactive      bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a local user (active, e-mail verified)",
		Long: `Create a local user who can log in with an e-mail address and a password.
The user is active and the address counts as verified (an operator vouches for
it); pass --inactive to require e-mail activation first. Without
--password-stdin the user has no password until set-password or a reset.`,
		Example: `  echo 'correct horse battery staple' | bridgekeeper user create --dsn sqlite:data/bk.db --email ada@example.com --password-stdin`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := normalizeEmail(u.Email)
			if err != nil {
				return err
			}
			u.Email = addr
			if passwordStdin {
				hash, err := e.readPasswordHash(u.Email, u.Name)
				if err != nil {
					return err
				}
				u.PasswordHash = hash
			}
			u.Active = !inactive
			u.EmailVerified = !inactive
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				u.ID = newUserID()
				if err := store.CreateUser(ctx, &u); err != nil {
					if errors.Is(err, storage.ErrConflict) {
						return fmt.Errorf("a user with e-mail %s exists already", u.Email)
					}
					return fmt.Errorf("create user: %w", err)
				}
				fmt.Fprintf(e.stdout, "created user %s (%s)\n", u.Email, u.ID)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&u.Email, "email", "", "e-mail address, the login name (required)")
	f.StringVar(&u.Name, "name", "", "full name")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.BoolVar(&inactive, "inactive", false, "create the user inactive, to be activated by e-mail")
	e.bindConfig(cmd, false)
	return cmd
}

func (e *env) userListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				users, err := store.ListUsers(ctx)
				if err != nil {
					return fmt.Errorf("list users: %w", err)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tSTATE\tCREATED")
				for _, u := range users {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, userState(&u), fmtTime(u.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func userState(u *storage.User) string {
	switch {
	case u.Disabled:
		return "disabled"
	case !u.Active:
		return "inactive"
	default:
		return "active"
	}
}

// findUser looks a user up by e-mail address or id.
func findUser(ctx context.Context, store *storage.Store, ref string) (*storage.User, error) {
	var (
		u   *storage.User
		err error
	)
	if strings.Contains(ref, "@") {
		u, err = store.GetUserByEmail(ctx, ref)
	} else {
		u, err = store.GetUser(ctx, ref)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("no user %q", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

func (e *env) userSetEnabledCommand(verb string, disable bool) *cobra.Command {
	short := "Enable a disabled user"
	if disable {
		short = "Disable a user: logins fail, sessions and refresh tokens are revoked"
	}
	cmd := &cobra.Command{
		Use:   verb + " EMAIL|ID",
		Short: short,
		Args:  exactArgs(1, "the user's e-mail address or id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				u, err := findUser(ctx, store, args[0])
				if err != nil {
					return err
				}
				// Only the flag: a password or e-mail change that commits
				// between findUser and this write is kept.
				if err := store.SetUserDisabled(ctx, u.ID, disable); err != nil {
					return fmt.Errorf("update user: %w", err)
				}
				if disable {
					if err := revokeUser(ctx, store, u.ID); err != nil {
						return err
					}
				}
				fmt.Fprintf(e.stdout, "%sd user %s\n", verb, u.Email)
				return nil
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func revokeUser(ctx context.Context, store *storage.Store, userID string) error {
	if err := store.DeleteUserBrowserSessions(ctx, userID); err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	if err := store.RevokeSubjectTokens(ctx, userID); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}

func (e *env) userDeleteCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete EMAIL|ID",
		Short: "Delete a user with their sessions, tokens and linked identities",
		Args:  exactArgs(1, "the user's e-mail address or id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				u, err := findUser(ctx, store, args[0])
				if err != nil {
					return err
				}
				if err := store.DeleteUser(ctx, u.ID); err != nil {
					return fmt.Errorf("delete user: %w", err)
				}
				fmt.Fprintf(e.stdout, "deleted user %s\n", u.Email)
				return nil
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func (e *env) userResetMFACommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reset-mfa EMAIL|ID",
		Short: "Remove a user's second factors (authenticator apps) and recovery codes, for a user who lost them all",
		Args:  exactArgs(1, "the user's e-mail address or id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				u, err := findUser(ctx, store, args[0])
				if err != nil {
					return err
				}
				n, err := store.DeleteSecondFactors(ctx, u.ID)
				if err != nil {
					return fmt.Errorf("reset second factors: %w", err)
				}
				if n > 0 {
					cfg, err := e.loadConfig(cmd)
					if err != nil {
						return err
					}
					if err := e.notifyFactorsReset(ctx, cfg, store, u.ID); err != nil {
						return err
					}
				}
				fmt.Fprintf(e.stdout, "removed %d second factor(s) and the recovery codes of %s; they sign in with their password (and set up a factor again where accounts.mfa is required)\n", n, u.Email)
				return nil
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func (e *env) userSetPasswordCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "set-password EMAIL|ID",
		Short:   "Set a user's password from standard input; revokes their sessions and e-mailed links",
		Example: `  echo 'a new long password' | bridgekeeper user set-password --dsn sqlite:data/bk.db ada@example.com`,
		Args:    exactArgs(1, "the user's e-mail address or id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, err := e.readPasswordHash(args[0])
			if err != nil {
				return err
			}
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				u, err := findUser(ctx, store, args[0])
				if err != nil {
					return err
				}
				// A security change like a reset: the links mailed before
				// it (activation, reset, e-mail change) end with it.
				if _, err := store.ChangeUserSecurity(ctx, u.ID, func(u *storage.User) error {
					u.PasswordHash = hash
					return nil
				}); err != nil {
					return fmt.Errorf("update user: %w", err)
				}
				if err := revokeUser(ctx, store, u.ID); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "password set for %s; their sessions, refresh tokens and outstanding e-mail links were revoked\n", u.Email)
				return nil
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("--email is required")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s, "@") {
		return "", fmt.Errorf("--email %q is not an e-mail address", s)
	}
	return strings.ToLower(s), nil
}

// newUserID returns a random, URL-safe, stable user id (the sub claim).
func newUserID() string {
	return "u_" + strings.ToLower(rand.Text())
}

// readPasswordHash reads a password from the first line of standard input,
// checks it against the same policy as the registration page (NIST SP
// 800-63B: length and a list of common passwords; personal are the user's
// e-mail and name) and returns its argon2id hash.
func (e *env) readPasswordHash(personal ...string) (string, error) {
	pw, err := readSecretLine(e.stdin)
	if err != nil {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if err := policy.New().Check(pw, personal...); err != nil {
		return "", fmt.Errorf("password refused: %w", err)
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return hash, nil
}
