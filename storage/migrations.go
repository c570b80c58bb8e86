package storage

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// migration is one step of the schema. Its SQL is written once for both
// dialects with these placeholders:
//
//	{ts}    timestamp with time zone (TIMESTAMP on SQLite, TIMESTAMPTZ on Postgres)
//	{bytes} binary (BLOB / BYTEA)
//
// Statements are separated by ";\n". Never edit a released migration:
// append a new one.
type migration struct {
	version int
	name    string
	sql     string
	// run, when set, is the part SQL cannot say, run after sql in the
	// same transaction.
	run func(ctx context.Context, s *Store, db bun.IDB) error
}

// requestTableSQL is the shape shared by the fosite token tables.
const requestTableColumns = `
	signature         TEXT PRIMARY KEY,
	request_id        TEXT NOT NULL,
	requested_at      {ts} NOT NULL,
	client_id         TEXT NOT NULL,
	scopes            TEXT NOT NULL,
	granted_scopes    TEXT NOT NULL,
	audiences         TEXT NOT NULL,
	granted_audiences TEXT NOT NULL,
	form              TEXT NOT NULL,
	session_data      TEXT NOT NULL,
	subject           TEXT NOT NULL,
	active            BOOLEAN NOT NULL,
	expires_at        {ts}`

var migrations = []migration{
	{
		version: 1,
		name:    "initial schema",
		sql: `
CREATE TABLE clients (
	id                         TEXT PRIMARY KEY,
	name                       TEXT NOT NULL,
	secret_hash                {bytes},
	public                     BOOLEAN NOT NULL,
	token_endpoint_auth_method TEXT NOT NULL,
	redirect_uris              TEXT NOT NULL,
	post_logout_redirect_uris  TEXT NOT NULL,
	allowed_origins            TEXT NOT NULL,
	grant_types                TEXT NOT NULL,
	response_types             TEXT NOT NULL,
	scopes                     TEXT NOT NULL,
	audiences                  TEXT NOT NULL,
	default_audiences          TEXT NOT NULL,
	created_at                 {ts} NOT NULL,
	updated_at                 {ts} NOT NULL
);
CREATE TABLE users (
	id             TEXT PRIMARY KEY,
	email          TEXT NOT NULL DEFAULT '',
	email_verified BOOLEAN NOT NULL,
	password_hash  TEXT NOT NULL,
	name           TEXT NOT NULL,
	given_name     TEXT NOT NULL,
	family_name    TEXT NOT NULL,
	picture        TEXT NOT NULL,
	active         BOOLEAN NOT NULL,
	disabled       BOOLEAN NOT NULL,
	created_at     {ts} NOT NULL,
	updated_at     {ts} NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email <> '';
CREATE INDEX users_email_order_idx ON users (email);
CREATE TABLE identities (
	connector_id   TEXT NOT NULL,
	subject        TEXT NOT NULL,
	user_id        TEXT NOT NULL,
	email          TEXT NOT NULL,
	email_verified BOOLEAN NOT NULL,
	claims         {bytes},
	connector_data {bytes},
	created_at     {ts} NOT NULL,
	last_login_at  {ts} NOT NULL,
	PRIMARY KEY (connector_id, subject)
);
CREATE INDEX identities_user_id_idx ON identities (user_id);
CREATE TABLE browser_sessions (
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	auth_time  {ts} NOT NULL,
	idp        TEXT NOT NULL,
	amr        TEXT NOT NULL,
	created_at {ts} NOT NULL,
	expires_at {ts} NOT NULL
);
CREATE INDEX browser_sessions_user_id_idx ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at_idx ON browser_sessions (expires_at);
CREATE TABLE pending_logins (
	id                  TEXT PRIMARY KEY,
	browser_binding     TEXT NOT NULL,
	client_id           TEXT NOT NULL,
	form                TEXT NOT NULL,
	requested_at        {ts} NOT NULL,
	expires_at          {ts} NOT NULL,
	connector_id        TEXT NOT NULL,
	upstream_state_hash TEXT NOT NULL,
	connector_state     {bytes}
);
CREATE INDEX pending_logins_expires_at_idx ON pending_logins (expires_at);
CREATE TABLE signing_keys (
	kid         TEXT PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	public_jwk  {bytes} NOT NULL,
	private_enc {bytes} NOT NULL,
	created_at  {ts} NOT NULL,
	activate_at {ts} NOT NULL,
	retired_at  {ts},
	remove_at   {ts}
);
CREATE TABLE action_tokens (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	data       TEXT NOT NULL,
	created_at {ts} NOT NULL,
	expires_at {ts} NOT NULL,
	used_at    {ts}
);
CREATE INDEX action_tokens_user_id_idx ON action_tokens (user_id);
CREATE INDEX action_tokens_expires_at_idx ON action_tokens (expires_at);
CREATE TABLE rate_counters (
	key          TEXT PRIMARY KEY,
	count        INTEGER NOT NULL,
	window_start {ts} NOT NULL,
	expires_at   {ts} NOT NULL
);
CREATE INDEX rate_counters_expires_at_idx ON rate_counters (expires_at);
CREATE TABLE jwt_assertions (
	jti        TEXT PRIMARY KEY,
	expires_at {ts} NOT NULL
);
CREATE INDEX jwt_assertions_expires_at_idx ON jwt_assertions (expires_at);
CREATE TABLE authorize_codes (` + requestTableColumns + `
);
CREATE INDEX authorize_codes_request_id_idx ON authorize_codes (request_id);
CREATE INDEX authorize_codes_expires_at_idx ON authorize_codes (expires_at);
CREATE INDEX authorize_codes_subject_idx ON authorize_codes (subject);
CREATE TABLE access_tokens (` + requestTableColumns + `
);
CREATE INDEX access_tokens_request_id_idx ON access_tokens (request_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at);
CREATE INDEX access_tokens_subject_idx ON access_tokens (subject);
CREATE INDEX access_tokens_client_id_idx ON access_tokens (client_id);
CREATE TABLE refresh_tokens (` + requestTableColumns + `,
	access_token_signature TEXT NOT NULL,
	first_used_at          {ts}
);
CREATE INDEX refresh_tokens_request_id_idx ON refresh_tokens (request_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_subject_idx ON refresh_tokens (subject);
CREATE INDEX refresh_tokens_client_id_idx ON refresh_tokens (client_id);
CREATE TABLE pkce_requests (` + requestTableColumns + `
);
CREATE INDEX pkce_requests_expires_at_idx ON pkce_requests (expires_at);
CREATE TABLE oidc_requests (` + requestTableColumns + `
);
CREATE INDEX oidc_requests_expires_at_idx ON oidc_requests (expires_at)`,
	},
	{
		version: 2,
		name:    "authorization codes carry their PKCE and OpenID Connect parts",
		sql: `ALTER TABLE authorize_codes ADD COLUMN pkce_form TEXT;
ALTER TABLE authorize_codes ADD COLUMN oidc_form TEXT`,
	},
	{
		version: 3,
		name:    "browser sessions know the upstream identity they came from",
		sql: `ALTER TABLE browser_sessions ADD COLUMN idp_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE browser_sessions ADD COLUMN auth_time_unknown BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE browser_sessions ADD COLUMN checked_at {ts}`,
	},
	{
		version: 4,
		name:    "DPoP (RFC 9449): the replay cache of proofs, and clients that require DPoP",
		sql: `CREATE TABLE dpop_proofs (
	id         TEXT PRIMARY KEY,
	expires_at {ts} NOT NULL
);
CREATE INDEX dpop_proofs_expires_at_idx ON dpop_proofs (expires_at);
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE`,
	},
	{
		version: 6,
		name:    "second factors (TOTP, later passkeys), recovery codes, the second step of a login, clients that require MFA",
		sql: `CREATE TABLE second_factors (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	kind         TEXT NOT NULL,
	name         TEXT NOT NULL,
	secret       {bytes},
	public_data  {bytes},
	counter      BIGINT NOT NULL DEFAULT 0,
	confirmed    BOOLEAN NOT NULL DEFAULT FALSE,
	created_at   {ts} NOT NULL,
	last_used_at {ts}
);
CREATE INDEX second_factors_user_id_idx ON second_factors (user_id);
CREATE TABLE recovery_codes (
	user_id    TEXT NOT NULL,
	code_hash  TEXT NOT NULL,
	created_at {ts} NOT NULL,
	used_at    {ts},
	PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE login_steps (
	login_id   TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	amr        TEXT NOT NULL,
	enrol      BOOLEAN NOT NULL DEFAULT FALSE,
	expires_at {ts} NOT NULL
);
CREATE INDEX login_steps_expires_at_idx ON login_steps (expires_at);
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE`,
	},
	{
		version: 7,
		name:    "passkeys: the credential id of a passkey factor (unique), WebAuthn ceremonies",
		sql: `ALTER TABLE second_factors ADD COLUMN credential_id TEXT;
CREATE UNIQUE INDEX second_factors_credential_id_idx ON second_factors (credential_id);
CREATE TABLE webauthn_ceremonies (
	id         TEXT PRIMARY KEY,
	binding    TEXT NOT NULL,
	purpose    TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	data       {bytes} NOT NULL,
	expires_at {ts} NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires_at_idx ON webauthn_ceremonies (expires_at)`,
	},
	{
		version: 8,
		name:    "access tokens are stored under the SHA-256 of their signature (accessKey)",
		run:     hashAccessTokenKeys,
	},
}

// hashAccessTokenKeys moves the access tokens stored before version 8
// under their keys (accessKey), and the access token signatures that
// active refresh tokens keep (rotation deactivates that access token).
// Postgres does it in SQL; SQLite, which has no SHA-256, row by row.
func hashAccessTokenKeys(ctx context.Context, s *Store, db bun.IDB) error {
	if s.dialect == DialectPostgres {
		const key = `rtrim(translate(encode(sha256(convert_to(%[1]s, 'UTF8')), 'base64'), '+/', '-_'), '=')`
		for _, stmt := range []string{
			fmt.Sprintf("UPDATE access_tokens SET signature = "+key, "signature"),
			fmt.Sprintf("UPDATE refresh_tokens SET access_token_signature = "+key+
				" WHERE active AND access_token_signature <> ''", "access_token_signature"),
		} {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}
	for _, q := range []struct{ read, write string }{
		{"SELECT signature FROM access_tokens",
			"UPDATE access_tokens SET signature = ? WHERE signature = ?"},
		{"SELECT DISTINCT access_token_signature FROM refresh_tokens WHERE active AND access_token_signature <> ''",
			"UPDATE refresh_tokens SET access_token_signature = ? WHERE active AND access_token_signature = ?"},
	} {
		var signatures []string
		if err := db.NewRaw(q.read).Scan(ctx, &signatures); err != nil {
			return err
		}
		for _, sig := range signatures {
			if _, err := db.ExecContext(ctx, q.write, accessKey(sig), sig); err != nil {
				return err
			}
		}
	}
	return nil
}
