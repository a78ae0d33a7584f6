package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/keel-ai/keel/internal/auth"
	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/store/sqlite"
)

// keys runs `keel keys create|list|revoke`.
func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: keel keys create --name NAME | keel keys list | keel keys revoke ID")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("keys "+sub, stderr)
	var cf configFlags
	cf.register(fs)
	name := fs.String("name", "", "a name for the new key (create)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "keel.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		if *name == "" {
			return fmt.Errorf("keys create: --name is required")
		}
		secret, k := auth.NewKey(*name, time.Now())
		if err := db.CreateKey(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created key %s (%s). It is shown once; keel stores only its hash.\n", k.ID, k.Name)
		fmt.Fprintln(stdout, secret)
		return nil
	case "list":
		ks, err := db.Keys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tSTATUS")
		for _, k := range ks {
			status := "active"
			if !k.Revoked.IsZero() {
				status = "revoked " + k.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Created.Format(time.RFC3339), status)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: keel keys revoke ID")
		}
		return db.RevokeKey(ctx, fs.Arg(0), time.Now())
	}
	return fmt.Errorf("unknown keys command %q (create, list, revoke)", sub)
}

func activeKeys(ks []*chat.Key) []*chat.Key {
	var out []*chat.Key
	for _, k := range ks {
		if k.Revoked.IsZero() {
			out = append(out, k)
		}
	}
	return out
}
