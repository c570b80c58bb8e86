package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// migrationLockID is the Postgres advisory lock key held while migrating
// (any constant shared by every Bridgekeeper process will do).
const migrationLockID = 0x62726b70 // "brkp"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at {ts} NOT NULL
)`

// dialectSQL fills in the dialect's column types.
func (s *Store) dialectSQL(query string) string {
	ts, bytes := "TIMESTAMP", "BLOB"
	if s.dialect == DialectPostgres {
		ts, bytes = "TIMESTAMPTZ", "BYTEA"
	}
	return strings.NewReplacer("{ts}", ts, "{bytes}", bytes).Replace(query)
}

// Migrate applies every pending migration in one transaction. It is
// idempotent, and safe when several processes run it at once: Postgres
// serialises them on an advisory lock, SQLite on its write lock (the
// transaction begins IMMEDIATE).
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrate(ctx, migrations[len(migrations)-1].version)
}

// migrate applies the pending migrations up to version last.
func (s *Store) migrate(ctx context.Context, last int) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		if s.dialect == DialectPostgres {
			if _, err := db.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", migrationLockID); err != nil {
				return s.wrap("migrate: take the migration lock", err)
			}
		}
		if _, err := db.ExecContext(ctx, s.dialectSQL(createMigrationsTable)); err != nil {
			return s.wrap("migrate: create schema_migrations", err)
		}
		applied, err := s.appliedVersions(ctx)
		if err != nil {
			return err
		}
		for _, m := range migrations {
			if applied[m.version] || m.version > last {
				continue
			}
			for _, stmt := range strings.Split(s.dialectSQL(m.sql), ";\n") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := db.ExecContext(ctx, stmt); err != nil {
					return s.wrap(fmt.Sprintf("migrate: version %d (%s)", m.version, m.name), err)
				}
			}
			if m.run != nil {
				if err := m.run(ctx, s, db); err != nil {
					return s.wrap(fmt.Sprintf("migrate: version %d (%s)", m.version, m.name), err)
				}
			}
			if _, err := db.NewInsert().Model(&schemaMigration{
				Version:   m.version,
				Name:      m.name,
				AppliedAt: time.Now().UTC(),
			}).Exec(ctx); err != nil {
				return s.wrap(fmt.Sprintf("migrate: record version %d", m.version), err)
			}
		}
		return nil
	})
}

// schemaMigration is one row of schema_migrations.
type schemaMigration struct {
	bun.BaseModel `bun:"table:schema_migrations"`

	Version   int       `bun:"version,pk"`
	Name      string    `bun:"name,notnull"`
	AppliedAt time.Time `bun:"applied_at,notnull"`
}

func (s *Store) appliedVersions(ctx context.Context) (map[int]bool, error) {
	var versions []int
	if err := s.reader(ctx).NewSelect().Model((*schemaMigration)(nil)).Column("version").Scan(ctx, &versions); err != nil {
		return nil, s.wrap("read schema_migrations", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}

// MigrationStatus counts the applied and the pending migrations.
func (s *Store) MigrationStatus(ctx context.Context) (applied, pending int, err error) {
	exists, err := s.tableExists(ctx, "schema_migrations")
	if err != nil {
		return 0, 0, err
	}
	done := map[int]bool{}
	if exists {
		if done, err = s.appliedVersions(ctx); err != nil {
			return 0, 0, err
		}
	}
	for _, m := range migrations {
		if done[m.version] {
			applied++
		} else {
			pending++
		}
	}
	return applied, pending, nil
}

func (s *Store) tableExists(ctx context.Context, table string) (bool, error) {
	query := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if s.dialect == DialectPostgres {
		query = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
	}
	var n int
	if err := s.reader(ctx).NewRaw(query, table).Scan(ctx, &n); err != nil {
		return false, s.wrap("look up table "+table, err)
	}
	return n > 0, nil
}
