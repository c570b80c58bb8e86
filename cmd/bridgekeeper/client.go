package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

func (e *env) clientCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage OAuth 2.0 / OpenID Connect clients",
	}
	cmd.AddCommand(e.clientCreateCommand(), e.clientUpdateCommand(), e.clientListCommand(), e.clientGetCommand(), e.clientDeleteCommand())
	return cmd
}

func (e *env) clientCreateCommand() *cobra.Command {
	var (
		c           storage.Client
		secretStdin bool
		jsonOut     bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a client",
		Long: `Register a client.

A public client (--public: a browser or mobile app) has no secret and must use
PKCE with S256. A confidential client authenticates with a secret: give one
on standard input (--secret-stdin) or let the broker generate one, which is
printed once and stored only as a keyed hash.

Redirect URIs match exactly, byte for byte; the one exception is a public
client's http redirect URI on 127.0.0.1 or [::1], which matches any port
(RFC 8252 native apps; localhost gets no such exception). A redirect URI
may not carry userinfo (user@host). Allowed origins are the browser origins
that may call the token, userinfo and revocation endpoints (CORS) for this
client only, matched exactly.`,
		Example: `  bridgekeeper client create --dsn sqlite:data/bk.db --id spa --public \
      --redirect-uri http://127.0.0.1:5173/callback --allowed-origin http://127.0.0.1:5173 \
      --post-logout-redirect-uri http://127.0.0.1:5173/
  echo "$SECRET" | bridgekeeper client create --dsn sqlite:data/bk.db --id api --secret-stdin \
      --grant client_credentials --grant authorization_code --grant refresh_token \
      --redirect-uri https://app.example.com/callback`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateClient(&c); err != nil {
				return err
			}
			cfg, err := e.loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			log := e.logger(cfg)
			store, sec, err := e.openStore(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer store.Close()

			var plain string
			if !c.Public {
				if secretStdin {
					plain, err = readSecretLine(e.stdin)
					if err != nil {
						return fmt.Errorf("read secret from standard input: %w", err)
					}
					var weak *storage.ClientError
					if errors.As(storage.CheckClientSecret(plain), &weak) {
						fmt.Fprintln(e.stderr, "warning: "+weak.Reason)
					}
				} else {
					if plain, err = password.GenerateClientSecret(); err != nil {
						return err
					}
				}
				hasher := password.ClientSecretHasher{Key: sec.Derive(secret.PurposeClientSecret)}
				if c.SecretHash, err = hasher.Hash(ctx, []byte(plain)); err != nil {
					return fmt.Errorf("hash secret: %w", err)
				}
			} else if secretStdin {
				return errors.New("--secret-stdin and --public exclude each other: public clients have no secret")
			}
			if err := store.CreateClient(ctx, &c); err != nil {
				if errors.Is(err, storage.ErrConflict) {
					return fmt.Errorf("client %q exists already (delete it first, or pick another --id)", c.ID)
				}
				if errors.Is(err, storage.ErrInvalidClient) {
					return flagErrors(err)
				}
				return fmt.Errorf("create client: %w", err)
			}
			if jsonOut {
				out := clientView(&c)
				if plain != "" && !secretStdin {
					out["client_secret"] = plain
				}
				return writeJSON(e.stdout, out)
			}
			fmt.Fprintf(e.stdout, "created client %q (%s)\n", c.ID, clientKind(&c))
			if plain != "" && !secretStdin {
				fmt.Fprintf(e.stdout, "client_secret: %s\n(shown once: store it now)\n", plain)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.ID, "id", "", "client id (required)")
	f.StringVar(&c.Name, "name", "", "display name")
	f.BoolVar(&c.Public, "public", false, "a public client (SPA, mobile): no secret, PKCE S256 required")
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the client secret from the first line of standard input")
	f.StringArrayVar(&c.RedirectURIs, "redirect-uri", nil, "allowed redirect URI, exact match (repeatable)")
	f.StringArrayVar(&c.AllowedOrigins, "allowed-origin", nil, "browser origin allowed by CORS, e.g. http://127.0.0.1:5173 (repeatable)")
	f.StringArrayVar(&c.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "allowed post_logout_redirect_uri, exact match (repeatable)")
	f.StringArrayVar(&c.GrantTypes, "grant", nil, "allowed grant: authorization_code, refresh_token, client_credentials (repeatable; default authorization_code and refresh_token)")
	f.StringArrayVar(&c.Scopes, "scope", nil, "allowed scope (repeatable; default openid profile email offline_access)")
	f.StringArrayVar(&c.Audiences, "audience", nil, "audience (API identifier) the client may request with the resource parameter (repeatable)")
	f.StringArrayVar(&c.DefaultAudiences, "default-audience", nil, "audience put in access tokens when none is requested (repeatable)")
	f.StringVar(&c.TokenEndpointAuthMethod, "auth-method", "", "token endpoint authentication: client_secret_basic (default) or client_secret_post; none for public clients")
	f.BoolVar(&c.RequireDPoP, "require-dpop", false, requireDPoPHelp)
	f.BoolVar(&c.RequireMFA, "require-mfa", false, requireMFAHelp)
	f.BoolVar(&jsonOut, "json", false, "print the client as JSON")
	e.bindConfig(cmd, false)
	return cmd
}

// validateClient fills the registration's defaults and checks it against
// the client rules (storage.PrepareClient, which storage applies again to
// every client it stores), naming the flags in its messages.
func validateClient(c *storage.Client) error { return flagErrors(storage.PrepareClient(c)) }

// flagErrors words each broken client rule in err for the command line.
func flagErrors(err error) error {
	if err == nil {
		return nil
	}
	var errs []error
	for _, e := range ruleErrors(err) {
		var ce *storage.ClientError
		if errors.As(e, &ce) {
			e = errors.New(flagMessage(ce))
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// ruleErrors lists the *storage.ClientError values joined (errors.Join)
// or wrapped in err, or err alone when it holds none.
func ruleErrors(err error) []error {
	var ce *storage.ClientError
	switch u := err.(type) {
	case *storage.ClientError:
		return []error{err}
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, ruleErrors(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		if errors.As(err, &ce) {
			return ruleErrors(u.Unwrap())
		}
	}
	return []error{err}
}

// clientFlag names the flag of a registration field ("" for none).
func clientFlag(field string) string {
	switch field {
	case storage.FieldClientID:
		return "--id"
	case storage.FieldGrantTypes:
		return "--grant"
	case storage.FieldRedirectURIs:
		return "--redirect-uri"
	case storage.FieldPostLogoutRedirectURIs:
		return "--post-logout-redirect-uri"
	case storage.FieldAllowedOrigins:
		return "--allowed-origin"
	case storage.FieldAuthMethod:
		return "--auth-method"
	case storage.FieldScopes:
		return "--scope"
	case storage.FieldAudiences:
		return "--audience"
	case storage.FieldDefaultAudiences:
		return "--default-audience"
	case storage.FieldSecret:
		return "--secret-stdin"
	}
	return ""
}

// flagMessage words a broken rule for the command line.
func flagMessage(e *storage.ClientError) string {
	flag := clientFlag(e.Field)
	switch {
	case flag == "":
		return e.Error()
	case e.Field == storage.FieldClientID && e.Value == "":
		return "--id is required"
	case e.Field == storage.FieldRedirectURIs && e.Value == "":
		return "the authorization_code grant needs at least one --redirect-uri"
	case e.Value == "":
		return flag + ": " + e.Reason
	default:
		return fmt.Sprintf("%s %q: %s", flag, e.Value, e.Reason)
	}
}

func readSecretLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("standard input is empty")
	}
	return line, nil
}

func clientKind(c *storage.Client) string {
	if c.Public {
		return "public"
	}
	return "confidential"
}

func clientView(c *storage.Client) map[string]any {
	return map[string]any{
		"client_id":                  c.ID,
		"client_name":                c.Name,
		"public":                     c.Public,
		"token_endpoint_auth_method": c.TokenEndpointAuthMethod,
		"redirect_uris":              c.RedirectURIs,
		"post_logout_redirect_uris":  c.PostLogoutRedirectURIs,
		"allowed_origins":            c.AllowedOrigins,
		"grant_types":                c.GrantTypes,
		"response_types":             c.ResponseTypes,
		"scopes":                     c.Scopes,
		"audiences":                  c.Audiences,
		"default_audiences":          c.DefaultAudiences,
		"require_dpop":               c.RequireDPoP,
		"require_mfa":                c.RequireMFA,
		"created_at":                 c.CreatedAt,
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) clientListCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the registered clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				clients, err := store.ListClients(ctx)
				if err != nil {
					return fmt.Errorf("list clients: %w", err)
				}
				if jsonOut {
					views := make([]map[string]any, 0, len(clients))
					for i := range clients {
						views = append(views, clientView(&clients[i]))
					}
					return writeJSON(e.stdout, views)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tKIND\tGRANTS\tDPOP\tMFA\tREDIRECT URIS")
				for i := range clients {
					c := &clients[i]
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, clientKind(c), strings.Join(c.GrantTypes, ","), dpopColumn(c), mfaColumn(c), strings.Join(c.RedirectURIs, " "))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	e.bindConfig(cmd, false)
	return cmd
}

func (e *env) clientGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one client as JSON",
		Args:  exactArgs(1, "the client id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				c, err := store.LookupClient(ctx, args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				} else if err != nil {
					return fmt.Errorf("get client: %w", err)
				}
				return writeJSON(e.stdout, clientView(c))
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func (e *env) clientDeleteCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a client and every token issued to it",
		Args:  exactArgs(1, "the client id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, store *storage.Store) error {
				if _, err := store.LookupClient(ctx, args[0]); errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				}
				if err := store.DeleteClient(ctx, args[0]); err != nil {
					return fmt.Errorf("delete client: %w", err)
				}
				fmt.Fprintf(e.stdout, "deleted client %q\n", args[0])
				return nil
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

// withStore runs fn with the configured, migrated database.
func (e *env) withStore(cmd *cobra.Command, fn func(context.Context, *storage.Store) error) error {
	ctx := cmd.Context()
	cfg, err := e.loadConfig(cmd)
	if err != nil {
		return err
	}
	store, err := storage.Open(ctx, cfg.DSN)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	return fn(ctx, store)
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s (see --help)", cmd.CommandPath(), what)
		}
		return nil
	}
}
