package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// setup registers a public client, a confidential client and a user with
// the bridgekeeper CLI, and points o at them.
func setup(ctx context.Context, o *options, stderr io.Writer) error {
	suffix := randomSuffix()
	o.clientID = "loadgen-spa-" + suffix
	o.ccID = "loadgen-cc-" + suffix
	o.ccSecret = rand.Text() + rand.Text()
	o.ccScope = "loadgen"
	o.email = "loadgen-" + suffix + "@example.com"
	o.password = rand.Text()
	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"client", "create", "--id", o.clientID, "--public", "--redirect-uri", o.redirectURI}},
		{o.ccSecret + "\n", []string{"client", "create", "--id", o.ccID, "--secret-stdin",
			"--grant", "client_credentials", "--scope", o.ccScope}},
		{o.password + "\n", []string{"user", "create", "--email", o.email, "--password-stdin"}},
	}
	for _, s := range steps {
		if err := bridgekeeper(ctx, o.bridgekeeper, o.dsn, s.stdin, s.args...); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "loadgen: registered clients %s, %s and user %s\n", o.clientID, o.ccID, o.email)
	return nil
}

func bridgekeeper(ctx context.Context, path, dsn, stdin string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append(args, "--dsn", dsn)...)
	cmd.Env = os.Environ()
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args[:2], " "), err, out.String())
	}
	return nil
}
